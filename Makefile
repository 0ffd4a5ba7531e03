# The front door: each target runs liveforge on the bundled demo workspace (WS).
WS ?= examples/demo
VENV := .venv
LF := $(VENV)/bin/liveforge -C $(WS)
CONSOLE ?= ttya
MEDIA ?= direct

.PHONY: deps configure world live iso usb netboot boot check clean clobber update status report test bench

deps:
	@tools/install-deps

$(WS)/build.env:
	$(LF) configure

configure: deps
	$(LF) configure

world: deps $(WS)/build.env
	$(LF) world

live: deps $(WS)/build.env
	$(LF) live

iso: deps
	$(LF) iso -c $(CONSOLE)

usb: deps
	$(LF) usb -c $(CONSOLE)

netboot: deps
	$(LF) netboot -c $(CONSOLE)

boot: deps
	$(LF) boot --media $(MEDIA) -c $(CONSOLE)

check: deps
	$(VENV)/bin/liveforge -C . check

status: deps
	$(LF) status

report: deps
	@$(LF) report

clean: deps
	$(LF) clean

clobber: deps
	$(LF) clobber

update: deps
	$(LF) update

test: deps
	$(VENV)/bin/python -m pytest -q -ra

bench: deps
	$(VENV)/bin/python bench/noop.py
