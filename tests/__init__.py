"""liveforge's tests: ``util/`` and ``build/`` test those layers, ``support/`` holds the helpers
they share (imported as ``tests.support.<module>``), ``conftest.py`` files the shared fixtures."""
