"""``GOLDEN_UPDATE=1`` rewrites the snapshot and fails the run, so an update is never a green run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.golden import snapshot


def test_an_update_rewrites_the_snapshot_then_fails_saying_to_review_and_rerun(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    shutil.copyfile(snapshot.SNAPSHOT_PATH, path)
    changed = snapshot.load(path)
    query_id = sorted(changed["queries"])[0]
    changed["queries"][query_id]["row_count"] += 1

    with pytest.raises(pytest.fail.Exception) as failed:
        snapshot.rewrite(changed, path)

    assert snapshot.load(path) == changed, "the new answers were written"
    assert path.read_text("utf-8") == snapshot.render(changed)
    message = str(failed.value)
    assert f"{snapshot.UPDATE_ENV}=1 rewrote {path}" in message
    assert "Review the diff" in message
    assert f"run the tests again without {snapshot.UPDATE_ENV}" in message


@pytest.mark.parametrize(("value", "update"), [("1", True), ("yes", True), ("", False), ("0", False)])
def test_only_a_set_golden_update_variable_asks_for_a_rewrite(
    monkeypatch: pytest.MonkeyPatch, value: str, update: bool
) -> None:
    monkeypatch.setenv(snapshot.UPDATE_ENV, value)
    assert snapshot.update_requested() is update
