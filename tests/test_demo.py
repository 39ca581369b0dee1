"""The demo's closing table: what continuing the base with WEAM changed, per language."""

from fairseq_weam.cli.demo import change_table


def retrieval(accs, covered, macro):
    return {
        "results": {l: {"n": n, "margin": {"mean": a}} for l, (n, a) in accs.items()},
        "averages": {"covered": covered, "margin": {"mean": {"macro": macro}}},
    }


def test_change_table_by_hand():
    base = retrieval({"fr": (500, 0.20), "sw": (6, 0.5)}, ["fr"], 0.20)
    after = retrieval({"fr": (500, 0.255), "sw": (6, 0.3333)}, ["fr"], 0.255)
    lines = change_table(base, after).splitlines()
    assert lines[1:] == [
        "| lang | n | base | base + WEAM | change |",
        "| fr | 500 | 20.0 | 25.5 | +5.5 |",
        "| sw † | 6 | 50.0 | 33.3 | -16.7 |",
        "| avg (1 langs) | | 20.0 | 25.5 | +5.5 |",
    ]
