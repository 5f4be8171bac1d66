"""Local stand-ins for the places outcomes are published to (never deployed): each verifies what
it receives exactly as the real service would, records it, and takes scripted faults."""
