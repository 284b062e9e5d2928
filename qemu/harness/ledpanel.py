"""The fsled board's LED panel, drawn on the host.

The VM's GPIO banks are the shared memory of QEMU's ivshmem device, which
is a file on the host (vm.gpio_file), so the host reads the registers the
driver writes and draws LED2..LED5 from them, live.
"""
import os
import struct
import sys
import threading

# Offsets from the Exynos4412 GPIO base 0x11000000, as in common/board.c.
BANKS = {"GPX2": 0x000C40, "GPX1": 0x000C20, "GPF3": 0x4001E0}
# LED, bank, pin: the FS4412's wiring.
LEDS = [("LED2", "GPX2", 7), ("LED3", "GPX1", 0), ("LED4", "GPF3", 4), ("LED5", "GPF3", 5)]
CON_OUTPUT = 0x1

LIT, DARK, NOT_OUTPUT = "lit", "dark", "not an output"


def read_leds(path):
    """[(led, state)] from the register file: a pin lights its LED when it
    is an output (CON) and its DAT bit is 1."""
    regs = {}
    with open(path, "rb") as f:
        for bank, off in BANKS.items():
            f.seek(off)
            data = f.read(8)
            regs[bank] = struct.unpack("<II", data) if len(data) == 8 else (0, 0)
    states = []
    for led, bank, pin in LEDS:
        con, dat = regs[bank]
        if (con >> (4 * pin)) & 0xF != CON_OUTPUT:
            states.append((led, NOT_OUTPUT))
        else:
            states.append((led, LIT if dat >> pin & 1 else DARK))
    return states


def render(states, color=True):
    """One line: 'fsled  LED2 (*) lit   LED3 ( ) dark ...'."""
    parts = []
    for led, state in states:
        lamp = {LIT: "(*)", DARK: "( )", NOT_OUTPUT: "(-)"}[state]
        if color and state == LIT:
            lamp = f"\x1b[1;33m{lamp}\x1b[0m"
        parts.append(f"{led} {lamp} {state}")
    return "fsled  " + "   ".join(parts)


class Pinned:
    """Keep the panel on the terminal's top line while a VM shell scrolls
    below it (a scroll region), redrawing when an LED changes."""

    def __init__(self, path, out=sys.stdout, interval=0.1):
        self.path, self.out, self.interval = path, out, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        rows = os.get_terminal_size(self.out.fileno()).lines
        # Clear, keep line 1 for the panel, put the cursor on line 2.
        self.out.write(f"\x1b[2J\x1b[2;{rows}r\x1b[2;1H")
        self.out.flush()
        self.thread.start()
        return self

    def _draw(self, line):
        # Save the cursor, draw on line 1, restore: the shell never notices.
        self.out.write(f"\x1b7\x1b[1;1H{line}\x1b[K\x1b8")
        self.out.flush()

    def _run(self):
        shown = None
        while not self.stop.is_set():
            try:
                line = render(read_leds(self.path))
            except OSError:
                line = "fsled  (the VM has not started its GPIO banks yet)"
            if line != shown:
                self._draw(line)
                shown = line
            self.stop.wait(self.interval)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.out.write("\x1b7\x1b[r\x1b8")   # give the whole screen back
        self.out.flush()


def follow(path, out=sys.stdout, interval=0.1, stop=None):
    """Draw the panel on one line of its own terminal until interrupted."""
    stop = stop or threading.Event()
    shown = None
    while not stop.is_set():
        if not os.path.exists(path):
            out.write("\nledpanel: the VM has stopped\n")
            return
        line = render(read_leds(path), color=out.isatty())
        if line != shown:
            out.write(f"\r{line}\x1b[K" if out.isatty() else line + "\n")
            out.flush()
            shown = line
        stop.wait(interval)
