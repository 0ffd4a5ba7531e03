"""Tests of ``liveforge.util``: each module on its own, without a workspace."""
