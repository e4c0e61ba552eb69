__version__ = "0.1.0"
LIBRARY = f"itly-async/{__version__}"
