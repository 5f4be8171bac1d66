"""``make bench``: the function against the official Dyplsapi SDK, on one machine (bench/README.md)."""
