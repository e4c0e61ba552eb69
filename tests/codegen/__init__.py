"""Tests of the code generator and the itly command."""
