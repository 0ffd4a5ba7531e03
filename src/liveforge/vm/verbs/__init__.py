"""vmadm's verbs, one small module each; ``liveforge.vm.cli`` parses and dispatches."""
