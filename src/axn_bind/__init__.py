"""axn-bind: Dyplsapi BindAxnExtension bindings from Alibaba Cloud Function Compute."""

__version__ = "0.1.0"
