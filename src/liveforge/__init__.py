"""liveforge: build live Linux platform images the smartos-live way."""

__version__ = "0.1.0"
