"""core/data_dir.py: the prepared data directory as one object, and flat_contents."""

import json

import numpy as np
import pytest
from fairseq.data import data_utils, indexed_dataset

from fairseq_weam.core.data_dir import PreparedData, flat_contents, load_dictionary
from fairseq_weam.core.errors import WeamDataError
from fairseq_weam.prepare import aligners
from fairseq_weam.prepare.binarize import write_stream
from fairseq_weam.prepare.errors import PrepareError


def _data_dir(path, summary=None):
    (path / "dict.txt").write_text("\u2581a 5\n\u2581b 3\nc 1\n", encoding="utf-8")
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    return PreparedData(str(path))


def test_what_a_prepared_directory_knows(tmp_path):
    data = _data_dir(tmp_path, {"pretokenize": {"split_cjk": True}, "pairs": {"en-zh": {}}})
    assert data.dict_path == str(tmp_path / "dict.txt")
    assert data.spm_model == str(tmp_path / "spm.model")
    # 4 fairseq specials + 3 symbols, + <mask> as a trained model's embedding table has it
    assert len(data.dictionary()) == 7 and len(data.dictionary(add_mask=True)) == 8
    assert data.dictionary(add_mask=True)[7] == "<mask>"
    assert list(data.dictionary().symbols) == list(load_dictionary(str(tmp_path)).symbols)
    assert data.summary["pairs"] == {"en-zh": {}}
    assert data.split_cjk is True
    assert data.pretokenizer()(" 打开文件\tnow ") == "打 开 文 件 now"


def test_data_not_prepared_by_us(tmp_path):
    data = _data_dir(tmp_path)  # no summary.json (e.g. fairseq-weam-import-hf's output)
    assert data.summary == {} and data.split_cjk is False
    assert data.pretokenizer()(" 打开文件\tnow ") == "打开文件 now"
    with pytest.raises(WeamDataError, match=r"sentencepiece model not found: .*spm\.model"):
        data.sentencepiece()
    assert PreparedData(str(tmp_path), spm_model="/elsewhere/x.model").spm_model == "/elsewhere/x.model"


def test_a_broken_dictionary_names_its_file(tmp_path):
    (tmp_path / "dict.txt").write_text("a 1\nno-count-here\n")
    with pytest.raises(WeamDataError, match=r"dict\.txt: not a fairseq dictionary \(Incorrect dictionary format"):
        PreparedData(str(tmp_path)).dictionary()


@pytest.mark.parametrize("vocab_size", [300, 70000])  # 16- and 32-bit files
def test_flat_contents_is_every_item_in_order(tmp_path, vocab_size):
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 9, size=50)
    flat = rng.integers(0, vocab_size, size=int(lengths.sum()))
    prefix = str(tmp_path / "train.x")
    write_stream(
        prefix,
        lambda: [(flat[: lengths[:20].sum()], lengths[:20]), (flat[lengths[:20].sum() :], lengths[20:])],
        vocab_size,
    )
    ds = data_utils.load_indexed_dataset(prefix, None, "mmap")
    got = flat_contents(ds, prefix)
    assert got.dtype == indexed_dataset.best_fitting_int_dtype(vocab_size)  # as stored, not copied
    np.testing.assert_array_equal(got, np.concatenate([ds[i].numpy() for i in range(len(ds))]))
    np.testing.assert_array_equal(got, flat)


def test_one_aligner_object_per_name():
    assert aligners.ALIGNERS == ("fast_align", "eflomal", "pharaoh")
    assert [aligners.get(n).imported for n in aligners.ALIGNERS] == [False, False, True]
    assert aligners.get("pharaoh").link_suffix("align") == "align"
    assert aligners.get("fast_align").link_suffix("align") is None
    assert aligners.get("pharaoh").load("en-fr", "/nowhere", "/nowhere") is None
    with pytest.raises(PrepareError, match=r"--aligner must be one of .*, got 'giza'"):
        aligners.get("giza")


def test_a_file_that_is_not_utf8_names_its_line(tmp_path):
    from fairseq_weam.core.text_files import open_text, read_lines

    path = tmp_path / "en-fr.fr"
    path.write_bytes("première\ndeuxième\n".encode("utf-8") + b"caf\xe9\n")
    with pytest.raises(WeamDataError, match=r"en-fr\.fr:3: not UTF-8 \(invalid continuation byte at byte 23\)"):
        read_lines(str(path))
    with pytest.raises(WeamDataError, match=r"en-fr\.fr: not UTF-8"):
        with open_text(str(path)) as f:
            list(f)
    path.write_text("a\r\nb\n", encoding="utf-8")
    assert read_lines(str(path)) == ["a", "b"]
