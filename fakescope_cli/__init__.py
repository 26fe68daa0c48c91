"""fakescope: tell whether an image was made by a generative model, how sure, and why."""

__version__ = "0.3.0"
