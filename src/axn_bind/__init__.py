"""axn-bind: Dyplsapi BindAxnExtension bindings from Alibaba Cloud Function Compute."""

# The one place the version is written: pyproject.toml reads it for the wheel, the function logs
# it when an instance starts (the FC code package carries no package metadata to ask), the local
# server answers it at GET /version, and CHANGELOG.md's newest release names it.
__version__ = "0.2.0"
