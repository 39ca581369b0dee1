"""Evaluation text is normalized like the prepared training text (CJK split per character)."""

import json

from fairseq_weam.core.data_dir import pretokenizer_for


def test_follows_the_prepared_data(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"pretokenize": {"split_cjk": True}}))
    assert pretokenizer_for(str(tmp_path))("  打开文件 now ") == "打 开 文 件 now"
    (tmp_path / "summary.json").write_text(json.dumps({"pretokenize": {"split_cjk": False}}))
    assert pretokenizer_for(str(tmp_path))("  打开文件  now ") == "打开文件 now"


def test_foreign_data_dir_gets_whitespace_normalization_only(tmp_path):
    assert pretokenizer_for(str(tmp_path))(" 打开文件\tnow  ") == "打开文件 now"
