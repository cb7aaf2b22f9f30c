__version__ = "0.1.0"

def __getattr__(name: str):
    "`deocc.create_model`: the one public way to get a model (imported on first use, so `import deocc` stays light)."
    if name == "create_model":
        from deocc.models import create_model
        return create_model
    raise AttributeError(f"module 'deocc' has no attribute {name!r}")
