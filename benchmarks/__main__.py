"""``python -m benchmarks [--quick] [--profile]``: run everything, print one table."""

from benchmarks._main import main

raise SystemExit(main())
