"""Golden bytes for every encoder, from the worked examples of PATLITE's manuals and samples.

Where the manual gives an example the test names it; where it gives only the layout table,
the test builds the frame byte by byte from that table so a reader can check it by eye.
"""

from __future__ import annotations

import pytest
from kyoten.hardware.errors import TowerConfigError, UnsupportedState
from kyoten.hardware.model import Colour, Light, TowerState, parse_colour, parse_light
from kyoten.hardware.protocol import BadReply, Codec, Nak
from kyoten.hardware.protocol.httpapi import HttpNh
from kyoten.hardware.protocol.phe import Phe
from kyoten.hardware.protocol.phn import Phn, state_of
from kyoten.hardware.protocol.pns import PnsLa6, PnsLr5, PnsNh

# NHL manual p. 27: red on + amber flash 1 + green flash 2 + buzzer pattern 4
NHL_EXAMPLE_STATE = TowerState(red=Light.ON, amber=Light.BLINK, green=Light.BLINK2, buzzer=4)


def test_pns_nh_set_matches_nhl_manual_example() -> None:
    expected = bytes.fromhex("58 58 53 00 00 06 01 02 03 00 00 04")  # NHL manual p. 27
    assert PnsNh().encode_set(NHL_EXAMPLE_STATE) == expected


def test_pns_nh_read_and_clear_frames() -> None:
    assert PnsNh().encode_status() == bytes.fromhex("58 58 47 00 00 00")  # NH G: XX G, no data
    assert PnsNh().encode_clear() == bytes.fromhex("58 58 43 00 00 00")  # NH C: XX C, no data


def test_pns_nh_decodes_six_byte_status_and_nak() -> None:
    codec = PnsNh()
    assert codec.decode_status(bytes([1, 2, 3, 0, 0, 4])) == NHL_EXAMPLE_STATE
    with pytest.raises(Nak):
        codec.decode_status(b"\x15")
    with pytest.raises(BadReply, match="6"):
        codec.decode_status(b"\x01\x02")
    with pytest.raises(BadReply, match="0x07"):
        codec.decode_status(bytes([7, 0, 0, 0, 0, 0]))
    codec.check_ack(b"\x06")
    with pytest.raises(Nak):
        codec.check_ack(b"\x15")


def test_la6_detailed_matches_brochure_example() -> None:
    # LA6-POE brochure: green, blue, off, white, red; no flash; buzzer 11
    expected = bytes.fromhex("41 42 44 00 00 07 04 06 00 09 01 00 0B")
    tiers = (Colour.GREEN, Colour.BLUE, None, Colour.WHITE, Colour.RED)
    assert PnsLa6().encode_detailed(tiers, flash=False, buzzer=11) == expected


def test_la6_set_is_per_tier_through_the_tier_map() -> None:
    # LA6 S (LA6-POE manual and sample): AB S 00 0006, tier1..tier5 (0 off/1 on/2 flash), buzzer 0-3
    codec = PnsLa6(tiers=(Colour.RED, Colour.AMBER, Colour.GREEN))
    state = TowerState(red=Light.BLINK, green=Light.ON, buzzer=2)
    assert codec.encode_set(state) == b"ABS\x00\x00\x06" + bytes([2, 0, 1, 0, 0, 2])
    with pytest.raises(UnsupportedState, match="no blue lamp"):
        codec.encode_set(TowerState(blue=Light.ON))
    with pytest.raises(UnsupportedState, match="blink2"):
        codec.encode_set(TowerState(red=Light.BLINK2))
    # G reply (LA6-POE manual p. 39): 8 inputs, mode 00, tiers 1-5, buzzer
    reply = bytes(8) + b"\x00" + bytes([2, 0, 1, 0, 0, 2])
    assert codec.decode_status(reply) == state
    assert codec.reply_needed(codec.encode_status(), reply[:3]) == 12


def test_lr5_set_is_per_colour_with_its_own_blink_values() -> None:
    # LR5 S (PATLITE's LR5-LAN sample): AB S 00 0006, R A G B W, buzzer 0/1
    state = TowerState(red=Light.BLINK, amber=Light.BLINK2, white=Light.ON, buzzer=1)
    frame = PnsLr5().encode_set(state)
    assert frame == b"ABS\x00\x00\x06" + bytes([2, 6, 0, 0, 1, 1])
    assert PnsLr5().decode_status(bytes([4, 7, 0, 0, 1, 1])) == state  # fast blink → BLINK
    with pytest.raises(UnsupportedState, match=r"0\.\.1"):
        PnsLr5().encode_set(TowerState(buzzer=2))


def test_phn_matches_nhl_manual_example() -> None:
    # NHL manual p. 25: 57 55 = red lit, amber flashing, green lit, buzzer 2
    state = TowerState(red=Light.ON, amber=Light.BLINK, green=Light.ON, buzzer=2)
    assert Phn().encode_set(state) == bytes.fromhex("57 55")
    assert Phn().decode_status(b"R\x55") == state


def test_phn_matches_la6_manual_example_and_priority_rules() -> None:
    # LA6-POE manual p. 44: 57 51 = tier1 lit, tier2 flashing, buzzer 2
    assert Phn().encode_set(TowerState(red=Light.ON, amber=Light.BLINK, buzzer=2)) == b"\x57\x51"
    # lit beats flash, buzzer 1 beats buzzer 2 (NHL manual p. 25)
    assert state_of(0x01 | 0x20 | 0x08 | 0x10) == TowerState(red=Light.ON, buzzer=1)
    assert Phn().encode_clear() == b"W\x00"  # W 00: the byte is the whole state, so all off
    with pytest.raises(UnsupportedState, match="no blue lamp"):
        Phn().encode_set(TowerState(blue=Light.ON))
    with pytest.raises(Nak):
        Phn().check_ack(b"NAK")


def test_http_alert_digits_follow_the_rsh_scheme() -> None:
    # NH HTTP, as the Node-RED and Home Assistant clients send it: alert=RYGBCZ, lamps 0-3,
    # buzzer 0-4
    assert HttpNh().encode_set(NHL_EXAMPLE_STATE) == b"/api/control?alert=123004"
    assert HttpNh().encode_clear() == b"/api/control?clear=1"
    HttpNh().check_ack(b"Success.")
    with pytest.raises(Nak):
        HttpNh().check_ack(b"Error.")


def test_serial_set_matches_phe_manual_example() -> None:
    # PHE-3FB3 manual p. 14: @??S190--4! = red on, amber no change, green off, buzzer 4.
    # We always send a full state and fill the unused bytes with '0' (the manual NAKs data
    # outside 0x30-0x3F, which '-' is), so only those positions differ from the example.
    manual = b"@??S190--4!"
    ours = Phe().encode_set(TowerState(red=Light.ON, buzzer=4))
    assert ours == b"@??S100004!"
    assert [i for i in range(len(manual)) if manual[i] != ours[i]] == [5, 7, 8]
    assert Phe(unit_id="01").encode_status() == b"@01G!"
    assert Phe().encode_clear() == b"@??C!"
    # G reply: 6 ASCII digits in the S layout, e.g. 0 1 3 0 0 3 (PHE-3FB3 manual)
    assert Phe().decode_status(b"013003") == TowerState(
        amber=Light.ON, green=Light.BLINK2, buzzer=3
    )


ALL_CODECS: list[Codec] = [PnsNh(), PnsLa6(), PnsLr5(), Phn(), HttpNh(), Phe()]


@pytest.mark.parametrize("codec", ALL_CODECS, ids=lambda c: c.name)
def test_tower_side_answers_what_the_client_side_sends(codec: Codec) -> None:
    """The emulator half of each codec understands the encoder half, byte for byte."""
    state = TowerState(red=Light.BLINK, green=Light.ON, buzzer=1)
    request = codec.encode_set(state)
    assert codec.request_needed(request) == 0
    assert codec.request_needed(request[:-1]) > 0 or codec.name == "http"
    reply, shown = codec.answer(request, TowerState())
    codec.check_ack(reply)
    assert shown == state
    if codec.can_read:
        status = codec.encode_status()
        reply, _ = codec.answer(status, shown)
        assert codec.reply_needed(status, reply) == 0
        assert codec.decode_status(reply) == state
    reply, cleared = codec.answer(codec.encode_clear(), shown)
    codec.check_ack(reply)
    assert cleared == TowerState()


def test_pns_tower_side_honours_no_change_and_naks_garbage() -> None:
    codec = PnsNh()
    before = TowerState(red=Light.ON, buzzer=2)
    reply, after = codec.answer(b"XXS\x00\x00\x06" + bytes([9, 1, 9, 9, 9, 9]), before)
    assert (reply, after) == (b"\x06", TowerState(red=Light.ON, amber=Light.ON, buzzer=2))
    assert codec.answer(b"XXS\x00\x00\x06" + bytes([5, 0, 0, 0, 0, 0]), before) == (
        b"\x15",
        before,
    )
    assert codec.answer(b"ABS\x00\x00\x06" + bytes(6), before)[0] == b"\x15"  # wrong category


def test_bad_names_list_the_valid_choices() -> None:
    with pytest.raises(TowerConfigError, match="red, amber, green, blue, white"):
        parse_colour("purple")
    with pytest.raises(TowerConfigError, match="off, on, blink, blink2"):
        parse_light("strobe")
    with pytest.raises(TowerConfigError, match="distinct"):
        PnsLa6(tiers=(Colour.RED, Colour.RED))
