from __future__ import annotations

from local_models.stopping import StopScanner


def feed_all(scanner: StopScanner, pieces: list[str]) -> str:
    out = "".join(scanner.feed(p) for p in pieces)
    return out + scanner.flush()


def test_no_stops_passes_everything_through() -> None:
    scanner = StopScanner([])
    assert scanner.feed("abc") == "abc" and scanner.flush() == ""


def test_stop_split_across_pieces_is_caught_and_hidden() -> None:
    scanner = StopScanner(["<end>"])
    assert feed_all(scanner, ["hello <e", "n", "d> more"]) == "hello "
    assert scanner.stopped


def test_partial_match_is_released_when_it_diverges() -> None:
    scanner = StopScanner(["STOP"])
    assert scanner.feed("ab ST") == "ab "
    assert scanner.feed("ART") == "START"
    assert scanner.flush() == "" and not scanner.stopped


def test_held_text_is_flushed_at_the_end() -> None:
    scanner = StopScanner(["\n\n"])
    assert scanner.feed("line\n") == "line"
    assert scanner.flush() == "\n"


def test_earliest_of_several_stops_wins() -> None:
    scanner = StopScanner(["zz", "b"])
    assert feed_all(scanner, ["aazzb"]) == "aa"
