"""The review page: a card per issue, most certain first; filters; choices saved as a CSV that export applies.

The browser tests open the page in headless Chromium (Debian's chromium and chromium-driver, which .ci/run installs
where they are missing) through selenium; they skip, saying why, only where no browser can be had."""

import csv
import io
import os
import time

import numpy as np
import pytest
from conftest import browser

from stages.decode import Dataset
from stages.export import ExportOptions, apply_choices, plan_changes
from stages.review import CHOICES_HEADER, png_bytes, review_page
from tests.test_aggregate import decided, graded_case


def reviewed():
    """165 digits' decisions (graded_case: 10 twins and 5 wrong labels without a twin) plus an outlier and an odd
    image, with class names and file paths."""
    labels, group, prob, wrong = graded_case(5)
    decisions = decided(labels, group, prob)
    decisions.outlier[3], decisions.odd[4] = True, "blank"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (len(labels), 8, 8, 1), dtype=np.uint8)
    names = [f"class {c}" for c in range(10)]
    data = Dataset(images=images, labels=labels, class_names=names, paths=[f"d/{i}.png" for i in range(len(labels))])
    return data, group, decisions, wrong


def test_images_are_inlined_as_real_pngs():
    from PIL import Image

    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert (np.asarray(Image.open(io.BytesIO(png_bytes(image)))) == image).all()
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    assert (np.asarray(Image.open(io.BytesIO(png_bytes(grey)))) == grey[..., 0]).all()


def test_cards_come_most_certain_first_then_outliers_then_odd_images():
    data, group, decisions, wrong = reviewed()
    order = decisions.issues()
    assert sorted(order[:15]) == sorted(wrong) and order[15:] == [3, 4]
    assert (np.diff(decisions.wrong_prob[order[:15]]) <= 0).all()
    page = review_page(data, group, decisions)
    assert page.count('<article class="card"') == 17 and "d/150.png" in page
    assert page.count("data:image/png;base64,") >= 17  # self-contained: no file beside it
    few = review_page(data, group, decisions, max_cards=5)
    assert few.count('<article class="card"') == 5 and "12 more issues" in few


def test_a_persons_choices_become_the_changes_export_makes():
    data, group, decisions, wrong = reviewed()
    rows = [
        {"index": str(wrong[0]), "choice": "accept", "new_label": f"class {decisions.suggested[wrong[0]]}"},
        {"index": str(wrong[1]), "choice": "keep", "new_label": f"class {data.labels[wrong[1]]}"},
        {"index": "3", "choice": "remove", "new_label": ""},
        {"index": "7", "choice": "relabel", "new_label": "class 9" if data.labels[7] != 9 else "class 8"},
    ]
    changes = apply_choices(data.labels, rows, data.class_names, "choices.csv")
    assert changes.changed().tolist() == sorted([wrong[0], 3, 7])
    assert changes.new_label[wrong[0]] == decisions.suggested[wrong[0]] and not changes.keep[3]
    from stages.errors import InputError

    for bad in (
        {"index": "999", "choice": "keep"},
        {"index": "1", "choice": "burn"},
        {"index": "1", "choice": "relabel", "new_label": "class 77"},
        {"index": "x", "choice": "keep"},
    ):
        with pytest.raises(InputError):
            apply_choices(data.labels, [bad], data.class_names, "choices.csv")


def test_without_choices_the_decisions_are_applied_each_part_switchable():
    data, group, decisions, wrong = reviewed()
    changes = plan_changes(data.labels, decisions)
    assert set(np.flatnonzero(changes.action == "relabel")) == set(wrong)
    assert not changes.keep[3] and not changes.keep[4]
    kept_all = plan_changes(data.labels, decisions, ExportOptions(relabel=False, drop_outliers=False, drop_odd=False))
    assert kept_all.changed().size == 0


def copyable(tmp_path, class_names):
    """Two 8x8 pictures on disk, one of each class, decided unchanged: what export --copy copies."""
    from PIL import Image

    from stages.export import Changes

    paths = []
    for i in range(2):
        paths.append(str(tmp_path / "src" / f"{i}.png"))
        (tmp_path / "src").mkdir(exist_ok=True)
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(paths[-1])
    data = Dataset(
        images=np.zeros((2, 8, 8, 1), np.uint8), labels=np.array([0, 1]), class_names=class_names, paths=paths
    )
    return data, Changes(
        keep=np.ones(2, bool), new_label=np.array([0, 1]), action=np.array(["", ""]), reason=np.array(["", ""])
    )


def test_a_copy_keeps_every_file_inside_it_whatever_the_class_names(tmp_path):
    from pipeline.steps import write_export

    data, changes = copyable(tmp_path, ["../../escaped", ".."])
    (tmp_path / "out" / "copy").mkdir(parents=True)
    write_export(tmp_path / "out" / "copy", data, changes, "manifest", True, "")
    copied = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png") if "src" not in p.parts)
    assert copied == ["out/copy/files/%2E%2E/1-1.png", "out/copy/files/..%2F..%2Fescaped/0-0.png"]
    manifest = list(csv.DictReader(open(tmp_path / "out" / "copy" / "manifest.csv")))
    assert [row["label"] for row in manifest] == ["../../escaped", ".."]  # the names themselves, as given


def test_a_source_file_gone_before_the_copy_is_named_not_the_copy(tmp_path):
    from pipeline.steps import write_export
    from stages.errors import InputError

    data, changes = copyable(tmp_path, ["a", "b"])
    os.remove(data.paths[1])
    (tmp_path / "copy").mkdir()
    with pytest.raises(InputError) as exc:
        write_export(tmp_path / "copy", data, changes, "manifest", True, "")
    assert str(exc.value).startswith(f"{data.paths[1]}: cannot be copied (No such file")


def test_choices_saved_by_a_spreadsheet_with_a_byte_order_mark_are_read(tmp_path):
    from pipeline.artifacts import save
    from pipeline.paths import Paths
    from pipeline.steps import export

    data, group, decisions, wrong = reviewed()
    paths = Paths().under(tmp_path)
    save(paths.decoded, data)
    save(paths.decisions, decisions)
    (tmp_path / "choices.csv").write_text("index,choice,new_label\n3,remove,\n", encoding="utf-8-sig")
    changes = export(tmp_path / "clean", choices=str(tmp_path / "choices.csv"), form="npz", paths=paths)
    assert changes.changed().tolist() == [3] and not changes.keep[3]


def test_in_a_browser_the_page_filters_records_choices_and_downloads_them(tmp_path):
    data, group, decisions, wrong = reviewed()
    page = tmp_path / "review.html"
    page.write_text(review_page(data, group, decisions))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = browser(downloads)
    try:
        from selenium.webdriver.common.by import By

        driver.get(page.as_uri())
        cards = driver.find_elements(By.CSS_SELECTOR, "article.card")
        assert len(cards) == 17 and all(c.is_displayed() for c in cards)
        assert cards[0].get_attribute("data-index") == str(decisions.issues()[0])
        # filter: wrong labels without a twin only
        for box in driver.find_elements(By.CSS_SELECTOR, ".kind-filter"):
            if box.get_attribute("value") != "wrong_label":
                box.click()
        shown = [c for c in cards if c.is_displayed()]
        assert sorted(int(c.get_attribute("data-index")) for c in shown) == sorted(wrong[10:])
        # accept the first shown card's suggestion, remove the second
        first, second = shown[0], shown[1]
        chosen = {int(first.get_attribute("data-index")): "accept", int(second.get_attribute("data-index")): "remove"}
        first.find_element(By.CSS_SELECTOR, "input[value=accept]").click()
        second.find_element(By.CSS_SELECTOR, "input[value=remove]").click()
        assert "2 decided" in driver.find_element(By.ID, "decided").text
        driver.find_element(By.ID, "download").click()
        target = downloads / "review-choices.csv"
        for _ in range(100):
            if target.exists() and target.stat().st_size:
                break
            time.sleep(0.1)
        rows = list(csv.DictReader(io.StringIO(target.read_text())))
    finally:
        driver.quit()
    assert list(rows[0]) == CHOICES_HEADER
    assert {int(r["index"]): r["choice"] for r in rows} == chosen
    accepted = next(r for r in rows if r["choice"] == "accept")
    assert accepted["new_label"] == f"class {decisions.suggested[int(accepted['index'])]}"
    changes = apply_choices(data.labels, rows, data.class_names, str(target))
    assert changes.changed().size == 2


def test_unlabelled_samples_stay_unlabelled_unless_their_suggestions_are_asked_for():
    data, group, decisions, wrong = reviewed()
    labels = data.labels.copy()
    labels[[10, 11]] = -1
    decisions.suggested[[10, 11]] = [2, 5]
    assert plan_changes(labels, decisions).new_label[[10, 11]].tolist() == [-1, -1]
    filled = plan_changes(labels, decisions, ExportOptions(label_unlabelled=True))
    assert filled.new_label[[10, 11]].tolist() == [2, 5] and filled.action[10] == "label"
    data.labels = labels
    decisions.outlier[10] = True
    page = review_page(data, group, decisions)
    assert 'data-given="unlabelled"' in page and 'data-given="class 9"' not in page.split('id="card-10"')[1][:200]
