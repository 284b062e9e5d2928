"""The LED panel decodes the FS4412 registers as the driver writes them."""
import struct

from harness import ledpanel


def write_regs(path, regs):
    with open(path, "wb") as f:
        f.truncate(8 << 20)
        for bank, (con, dat) in regs.items():
            f.seek(ledpanel.BANKS[bank])
            f.write(struct.pack("<II", con, dat))


def test_a_lit_led_needs_an_output_pin_and_its_bit(tmp_path):
    path = tmp_path / "gpio.mem"
    # GPX2_7 output and high; GPX1_0 output and low; GPF3_4 high but an
    # input; GPF3_5 output and high, among other pins' bits.
    write_regs(path, {"GPX2": (0x1 << 28, 1 << 7),
                      "GPX1": (0xFFFFFFF1, 0xFE),
                      "GPF3": (0x0010_0000 | 0x2 << 16, 1 << 4 | 1 << 5)})
    assert ledpanel.read_leds(path) == [("LED2", ledpanel.LIT), ("LED3", ledpanel.DARK),
                                        ("LED4", ledpanel.NOT_OUTPUT), ("LED5", ledpanel.LIT)]


def test_a_fresh_board_has_no_output_and_renders_plainly(tmp_path):
    path = tmp_path / "gpio.mem"
    write_regs(path, {})
    line = ledpanel.render(ledpanel.read_leds(path), color=False)
    assert line == ("fsled  LED2 (-) not an output   LED3 (-) not an output   "
                    "LED4 (-) not an output   LED5 (-) not an output")
