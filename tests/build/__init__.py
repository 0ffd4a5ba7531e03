"""Tests of ``liveforge.build``, the platform build system: unit tests of its parts and end-to-end
runs of its command line on real workspaces."""
