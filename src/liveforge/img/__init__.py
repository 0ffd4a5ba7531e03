"""imgadm and imgapi: images from IMGAPI-compatible sources, the image store, the image server.

Imports only ``liveforge.util``; ``liveforge.vm`` builds on it, ``liveforge.build`` never does."""
