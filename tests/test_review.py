"""The review page: a card per issue, flagged ones first, then those worth a look; beside each card what its classes
look like here and the evidence; choices by keyboard or mouse, kept in the browser, saved as a CSV that export
applies and the page loads back.

The browser tests open the page in headless Chromium (Debian's chromium and chromium-driver, which .ci/run installs
where they are missing) through selenium; they skip, saying why, only where no browser can be had."""

import base64
import csv
import io
import json
import os
import re
import time

import numpy as np
import pytest
from conftest import browser, pictures

from stages.decode import Dataset
from stages.export import ExportOptions, apply_choices, plan_changes
from stages.review import (
    CHOICES_HEADER,
    MAX_SHOWN,
    STRIP,
    compare_strips,
    nearest_pictures,
    page_data,
    png_bytes,
    review_page,
    script_json,
)
from tests.test_aggregate import decided, graded_case

LOOKS = {20: 0.3, 21: 0.6}  # samples reviewed() marks worth a look, with their probability of a wrong label


def reviewed():
    """165 digits' decisions (graded_case: 10 twins and 5 wrong labels without a twin) plus an outlier, an odd
    image and two samples worth a look (LOOKS), with class names and file paths: 19 cards."""
    labels, group, prob, wrong = graded_case(5)
    decisions = decided(labels, group, prob)
    decisions.outlier[3], decisions.odd[4] = True, "blank"
    decisions.worth_a_look[:] = False  # only LOOKS, whatever the rule's review_share picked
    for i, p in LOOKS.items():
        decisions.worth_a_look[i], decisions.wrong_prob[i] = True, p
    images = pictures(len(labels), 8, 8, 1)
    names = [f"class {c}" for c in range(10)]
    data = Dataset(images=images, labels=labels, class_names=names, paths=[f"d/{i}.png" for i in range(len(labels))])
    return data, group, decisions, wrong


def page_json(page: str) -> dict:
    """The data the page carries (its #data script element), as the page's script reads it."""
    return json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1))


def test_cards_come_flagged_first_most_certain_first_then_those_worth_a_look_by_probability():
    data, group, decisions, wrong = reviewed()
    cards = page_data(data, group, decisions)["cards"]
    order = [c["index"] for c in cards]
    assert sorted(order[:15]) == sorted(wrong) and order[15:17] == [3, 4] and order[17:] == [21, 20]
    assert [c["kind"] for c in cards[15:]] == ["outlier", "odd", "look", "look"]
    assert all(c["kind"] in ("twin", "wrong_label") for c in cards[:15])
    assert (np.diff([c["wrong"] for c in cards[:15]]) <= 0).all()
    assert [c["wrong"] for c in cards[17:]] == [0.6, 0.3]
    few = page_data(data, group, decisions, max_cards=5)
    assert len(few["cards"]) == 5 and few["issues"] == 19


def test_a_page_without_issues_says_so_and_holds_no_picture():
    data, group, decisions, wrong = reviewed()
    decisions.flagged[:], decisions.outlier[:], decisions.odd[:], decisions.worth_a_look[:] = False, False, "", False
    page = page_data(data, group, decisions)
    assert page["cards"] == [] and page["images"] == {} and page["issues"] == 0
    assert page_json(review_page(data, group, decisions))["cards"] == []


def test_a_card_shows_the_likeliest_classes_and_the_probability_its_label_is_wrong_never_a_confidence():
    data, group, decisions, wrong = reviewed()
    page = review_page(data, group, decisions)
    card = next(c for c in page_json(page)["cards"] if c["index"] == wrong[-1])
    i = wrong[-1]
    top = [p for _, p in card["top"]]
    assert len(top) == 3 and card["top"][0][0] == decisions.suggested[i] and top == sorted(top, reverse=True)
    assert top == pytest.approx(decisions.class_prob[i, [k for k, _ in card["top"]]], abs=1e-4)
    assert top[2] >= np.sort(decisions.class_prob[i])[-3] - 1e-4  # no likelier class left out
    assert card["wrong"] == pytest.approx(decisions.wrong_prob[i], abs=1e-4)
    assert "confidence" not in page.lower()


def test_the_compare_strips_hold_the_likeliest_samples_the_tool_trusts_of_each_class():
    data, group, decisions, wrong = reviewed()
    labels, prob = data.labels, decisions.class_prob
    of_two = np.flatnonzero(labels == 2)
    best = of_two[np.argmax(prob[of_two, 2])]
    decisions.worth_a_look[best] = True  # a sample worth a look is no example of its class
    strips = compare_strips(labels, decisions, [2, 5])
    assert len(strips[2]) == STRIP and best not in strips[2]
    assert all(labels[j] == 2 and not decisions.flagged[j] and not decisions.worth_a_look[j] for j in strips[2])
    assert (np.diff(prob[strips[2], 2]) <= 0).all()
    shown = set(strips[2])
    others = [j for j in of_two if j not in shown and not decisions.flagged[j] and not decisions.worth_a_look[j]]
    assert prob[strips[2], 2].min() >= prob[others, 2].max()
    page = page_data(data, group, decisions)
    assert all(str(j) in page["images"] for strip in page["strips"].values() for j in strip)


def test_an_outliers_nearest_pictures_are_the_trusted_pictures_most_like_it():
    data, group, decisions, wrong = reviewed()
    rng = np.random.default_rng(1)
    noisy = np.clip(data.images[40].astype(int) + rng.integers(-20, 21, data.images[40].shape), 0, 255)
    data.images[3] = noisy.astype(np.uint8)  # the outlier: a noisy copy of sample 40
    data.images[wrong[0]] = data.images[40]  # an exact copy, but flagged: not trusted, so never shown as near
    card = next(c for c in page_data(data, group, decisions)["cards"] if c["index"] == 3)
    assert card["kind"] == "outlier" and card["near"][0] == [40, int(data.labels[40])] and len(card["near"]) == 3
    assert all(j != wrong[0] for j, _ in card["near"])
    pool = np.arange(50, 165)
    assert nearest_pictures(data.images, np.array([3]), pool, k=2, chunk=7) == nearest_pictures(
        data.images, np.array([3]), pool, k=2
    )  # chunking the pool changes nothing


def test_a_twin_conflict_card_names_each_twins_label_and_which_copy_the_tool_trusts():
    data, group, decisions, wrong = reviewed()
    i = next(int(j) for j in wrong if decisions.reason[j] == "twin")
    card = next(c for c in page_data(data, group, decisions)["cards"] if c["index"] == i)
    twins = [j for j in np.flatnonzero(group == group[i]) if j != i]
    assert card["kind"] == "twin" and [t[0] for t in card["twins"]] == twins
    for j, label, trusted in card["twins"]:
        assert label == data.labels[j] and trusted == (data.labels[j] == decisions.suggested[i])
    assert any(t[2] for t in card["twins"])


def test_small_pictures_are_enlarged_by_whole_factors_and_photos_kept_at_their_size_up_to_a_bound():
    from PIL import Image

    data, group, decisions, wrong = reviewed()
    view = page_data(data, group, decisions)["view"]
    assert view["large"] == [168, 168] and view["thumb"] == [56, 56] and view["pixelated"]
    data.images = pictures(len(data.labels), 400, 300, 3)
    page = page_data(data, group, decisions, max_cards=2)
    assert page["view"]["large"] == [240, 320] and not page["view"]["pixelated"]
    uri = next(iter(page["images"].values()))
    assert uri.startswith("data:image/jpeg;base64,")  # colour: JPEG, a seventh of a photo's PNG
    photo = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert max(photo.size) <= MAX_SHOWN and photo.size == (150, 200)


def test_names_reach_the_page_as_json_a_script_element_cannot_be_closed_by():
    hostile = ["</script><script>alert(1)</script>", "a\rb", "<!--", "\u202egnp.exe", "x&amp;y", "\u2028"]
    text = script_json({"classes": hostile})
    assert text.isascii() and not set("<>&\r") & set(text)
    assert json.loads(text) == {"classes": hostile}
    data, group, decisions, wrong = reviewed()
    data.class_names = hostile + [f"c{k}" for k in range(4)]
    data.paths[wrong[0]] = "javascript:alert(1)"
    page = review_page(data, group, decisions)
    assert page.count("<script") == 2 and page.count("</script>") == 2  # the data and the page's own script
    assert page_json(page)["classes"][:6] == hostile and "javascript:" in page_json(page)["cards"][0]["path"]


def test_images_are_inlined_as_real_pngs():
    from PIL import Image

    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert (np.asarray(Image.open(io.BytesIO(png_bytes(image)))) == image).all()
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    assert (np.asarray(Image.open(io.BytesIO(png_bytes(grey)))) == grey[..., 0]).all()


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
    decisions.dataset = data.fingerprint  # made from these data, as the pipeline's steps mark it
    save(paths.decoded, data)
    save(paths.decisions, decisions)
    (tmp_path / "choices.csv").write_text("index,path,choice,new_label\n3,d/3.png,remove,\n", encoding="utf-8-sig")
    changes = export(tmp_path / "clean", choices=str(tmp_path / "choices.csv"), form="npz", paths=paths)
    assert changes.changed().tolist() == [3] and not changes.keep[3]


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
    card = next(c for c in page_data(data, group, decisions)["cards"] if c["index"] == 10)
    assert card["given"] == -1 and card["suggested"] == -1  # an outlier: named "unlabelled", nothing to accept


# ---- in a browser ------------------------------------------------------------------------------------------------


def opened(tmp_path, page_text: str):
    """(driver, page path, downloads folder): the page written to tmp_path and open in headless Chromium."""
    page = tmp_path / "review.html"
    page.write_text(page_text, encoding="utf-8")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = browser(downloads)
    driver.set_window_size(1300, 900)
    driver.get(page.as_uri())
    ready(driver)
    return driver, page, downloads


def ready(driver):
    for _ in range(300):
        if driver.execute_script("return performance.getEntriesByName('review-ready').length"):
            return
        time.sleep(0.05)
    raise AssertionError("the page never drew its cards")


def press(driver, *keys):
    from selenium.webdriver.common.action_chains import ActionChains

    for key in keys:
        ActionChains(driver).send_keys(key).perform()


def count(driver) -> str:
    return driver.find_element("id", "count").text


def decided_cards(driver) -> dict[int, str]:
    """The cards drawn as decided: sample index -> what the card says was chosen."""
    return {
        int(i): verdict
        for i, verdict in driver.execute_script(
            "return [...document.querySelectorAll('article.card.decided')]"
            ".map(a => [a.dataset.index, a.querySelector('.verdict').textContent])"
        )
    }


def download(driver, downloads):
    """Press the download button; the rows of the CSV it writes (a new file each time), read as export reads them."""
    before = set(downloads.iterdir())
    driver.find_element("id", "download").click()
    for _ in range(100):
        new = [p for p in set(downloads.iterdir()) - before if p.suffix == ".csv" and p.stat().st_size]
        if new:
            with open(new[0], newline="", encoding="utf-8-sig") as f:
                return new[0], list(csv.DictReader(f))
        time.sleep(0.1)
    raise AssertionError("nothing downloaded")


def drawn(driver) -> list[int]:
    return [
        int(i)
        for i in driver.execute_script(
            "return [...document.querySelectorAll('article.card')].map(a => a.dataset.index)"
        )
    ]


def test_with_the_keyboard_choices_survive_a_reload_and_a_clear_by_loading_the_download_back(tmp_path):
    from pipeline.artifacts import save
    from pipeline.paths import Paths
    from pipeline.steps import export

    data, group, decisions, wrong = reviewed()
    cards = page_data(data, group, decisions)["cards"]
    first, second, third, fourth = cards[:4]
    digit = next(d for d in range(10) if d not in (second["given"], second["suggested"]))
    typed = next(d for d in range(10) if d not in (fourth["given"], fourth["suggested"]))
    decisions.estimate[:] = [5.4, 2.1, 9.6]
    driver, page, downloads = opened(tmp_path, review_page(data, group, decisions))
    try:
        assert count(driver) == "0 decided, 19 left" and drawn(driver)[0] == first["index"]
        press(driver, "a", str(digit), "x")  # accept the first card, relabel the second, remove the third
        press(driver, "r", f"class {typed}", "\n")  # the fourth: typed, then taken back
        press(driver, "p", "u")
        want = {
            first["index"]: f"accept as class {first['suggested']}",
            second["index"]: f"relabel as class {digit}",
            third["index"]: "remove",
        }
        assert decided_cards(driver) == want and count(driver) == "3 decided, 16 left"
        driver.refresh()
        ready(driver)
        assert decided_cards(driver) == want and count(driver) == "3 decided, 16 left"
        csv_file, rows = download(driver, downloads)
        driver.find_element("id", "clear").click()
        driver.switch_to.alert.accept()
        assert decided_cards(driver) == {} and count(driver) == "0 decided, 19 left"
        driver.refresh()
        ready(driver)
        assert decided_cards(driver) == {}  # cleared from the browser's storage too
        driver.find_element("id", "load").send_keys(str(csv_file))
        for _ in range(50):
            if decided_cards(driver):
                break
            time.sleep(0.1)
        assert decided_cards(driver) == want and count(driver) == "3 decided, 16 left"
        assert "3 choices loaded" in driver.find_element("id", "status").text
        summary = driver.find_element("id", "summary").text
        assert "about 5 labels are wrong (2 to 10) among the samples without a twin" in summary
    finally:
        driver.quit()
    assert list(rows[0]) == CHOICES_HEADER and {r["dataset"] for r in rows} == {data.fingerprint}
    assert {int(r["index"]): (r["choice"], r["new_label"]) for r in rows} == {
        first["index"]: ("accept", f"class {first['suggested']}"),
        second["index"]: ("relabel", f"class {digit}"),
        third["index"]: ("remove", ""),
    }
    assert {int(r["index"]): r["path"] for r in rows} == {i: data.paths[i] for i in want}
    paths = Paths().under(tmp_path / "run")  # the download applied as `twins export --choices` applies it
    decisions.dataset = data.fingerprint  # made from these data, as the pipeline's steps mark it
    save(paths.decoded, data)
    save(paths.decisions, decisions)
    changes = export(tmp_path / "clean", choices=str(csv_file), form="npz", paths=paths)
    assert changes.changed().tolist() == sorted(want)
    assert changes.new_label[second["index"]] == digit and not changes.keep[third["index"]]


def test_a_load_made_for_other_data_or_naming_other_files_is_refused_whole(tmp_path):
    data, group, decisions, wrong = reviewed()
    first, second = page_data(data, group, decisions)["cards"][:2]
    driver, page, downloads = opened(tmp_path, review_page(data, group, decisions))
    header = ",".join(CHOICES_HEADER)
    ok = f"{second['index']},{data.paths[second['index']]},,,,remove,,{data.fingerprint}"
    bad = {
        "other.csv": f"{header}\n{ok}\n{first['index']},{data.paths[first['index']]},,,,remove,,0123456789abcdef\n",
        "moved.csv": f"{header}\n{ok}\n{first['index']},d/elsewhere.png,,,,remove,,{data.fingerprint}\n",
        "twice.csv": f"{header}\n{ok}\n{ok}\n",
        "unknown.csv": f"{header}\n{ok}\n{first['index']},{data.paths[first['index']]},,,,relabel,nope,"
        f"{data.fingerprint}\n",
    }
    try:
        for name, text in bad.items():
            (tmp_path / name).write_text(text)
            driver.find_element("id", "load").send_keys(str(tmp_path / name))
            for _ in range(50):
                if name in driver.find_element("id", "status").text:
                    break
                time.sleep(0.1)
            status = driver.find_element("id", "status")
            assert name in status.text and "bad" in status.get_attribute("class"), (name, status.text)
            assert decided_cards(driver) == {}, name  # all or nothing: the good row is not taken either
    finally:
        driver.quit()


def test_names_and_paths_stay_text_and_a_carriage_return_in_a_class_survives_page_csv_and_export(tmp_path):
    data, group, decisions, wrong = reviewed()
    names = [
        "</script><script>window.pwned=1</script>",
        "a\rb",
        "<img src=x onerror=window.pwned=2>",
        "\u202egnp.exe",
        '=HYPERLINK("x")',
        'q"uo,te\n',
        "c6",
        "c7",
        "c8",
        "c9",
    ]
    data.class_names = names
    cards = page_data(data, group, decisions)["cards"]
    i = next(c["index"] for c in cards if 1 not in (c["given"], c["suggested"]))
    other = next(c["index"] for c in cards if c["index"] != i)
    data.paths[i] = "javascript:window.pwned=3"
    data.paths[other] = "d/\u202eevil\r.png"
    driver, page, downloads = opened(tmp_path, review_page(data, group, decisions))
    try:
        assert driver.execute_script("return [window.pwned, document.scripts.length]") == [None, 2]
        assert not driver.find_elements("css selector", "img[src=x], a[href]")
        shown = driver.find_element("id", "card-" + str(other)).text
        assert "d/\\u202eevil\\u000d.png" in shown  # bidi and line breaks shown, not obeyed
        options = driver.execute_script("return [...document.getElementById('class-filter').options].map(o => o.text)")
        assert options[1:4] == [names[0], "a\\u000db", names[2]]  # markup shown as text
        driver.execute_script("document.getElementById('card-' + arguments[0]).click()", i)
        press(driver, "1")  # relabel as class 1: "a\rb"
        assert decided_cards(driver) == {i: "relabel as a\\u000db"}
        csv_file, rows = download(driver, downloads)
        driver.find_element("id", "clear").click()
        driver.switch_to.alert.accept()
        driver.find_element("id", "load").send_keys(str(csv_file))
        for _ in range(50):
            if decided_cards(driver):
                break
            time.sleep(0.1)
        assert decided_cards(driver) == {i: "relabel as a\\u000db"}  # read back, the CR still a CR
        assert driver.execute_script("return window.pwned") is None
    finally:
        driver.quit()
    assert [(r["index"], r["path"], r["new_label"]) for r in rows] == [(str(i), "javascript:window.pwned=3", "a\rb")]
    changes = apply_choices(data.labels, rows, data.class_names, str(csv_file), paths=data.paths)
    assert changes.changed().tolist() == [i] and changes.new_label[i] == 1


def test_filters_and_sorting_by_kind_class_and_probability(tmp_path):
    from selenium.webdriver.support.ui import Select

    data, group, decisions, wrong = reviewed()
    driver, page, downloads = opened(tmp_path, review_page(data, group, decisions))
    try:
        assert len(drawn(driver)) == 19
        for box in driver.find_elements("css selector", ".kind-filter"):
            if box.get_attribute("value") != "look":
                box.click()
        assert drawn(driver) == [21, 20]  # worth a look, likeliest wrong first
        Select(driver.find_element("id", "sort")).select_by_value("wrong-asc")
        assert drawn(driver) == [20, 21]
        minimum = driver.find_element("id", "min-wrong")
        minimum.clear()
        minimum.send_keys("0.5\t")
        assert drawn(driver) == [21]
        minimum.clear()
        minimum.send_keys("0\t")
        Select(driver.find_element("id", "class-filter")).select_by_value(str(data.labels[20]))
        assert drawn(driver) == [20]
        for box in driver.find_elements("css selector", ".kind-filter"):
            if box.get_attribute("value") != "look":
                box.click()  # every kind again
        cards = page_data(data, group, decisions)["cards"]
        of_class = [c for c in cards if data.labels[20] in (c["given"], c["suggested"])]
        assert drawn(driver) == [c["index"] for c in sorted(of_class, key=lambda c: c["wrong"])]
    finally:
        driver.quit()


def test_a_page_of_5000_cards_draws_25_at_a_time_flagged_first_then_worth_a_look_by_probability(tmp_path):
    from benchmarks.review_page import queue_case

    rng = np.random.default_rng(0)
    data, group, decisions = queue_case(pictures(6000, 8, 8, 1), rng.integers(0, 10, 6000), 5000)
    driver, page, downloads = opened(tmp_path, review_page(data, group, decisions, max_cards=5000))
    cards = "return [...document.querySelectorAll('article.card')].map(a => +a.dataset.index)"
    try:
        assert count(driver) == "0 decided, 5000 left"
        queue = driver.execute_script("return order.map(c => [c.index, c.kind, c.wrong])")  # the list, as drawn
        pages = [driver.execute_script(cards)]
        for _ in range(2):
            press(driver, "\ue00f")  # PageDown
            pages.append(driver.execute_script(cards))
        press(driver, "\ue010")  # End: the last card, on the last page
        pages.append(driver.execute_script(cards))
        press(driver, "n", "a")  # past the last card the cursor stays; accept it
        assert count(driver) == "1 decided, 4999 left"
    finally:
        driver.quit()
    indices = [i for i, _, _ in queue]
    assert indices == decisions.issues()[:5000]
    assert pages == [indices[:25], indices[25:50], indices[50:75], indices[-25:]]
    kinds = [kind for _, kind, _ in queue]
    looks = kinds.index("look")
    assert looks > 0 and set(kinds[looks:]) == {"look"}
    flagged = [p for i, kind, p in queue if kind in ("twin", "wrong_label")]
    worth = [p for i, kind, p in queue if kind == "look"]
    assert np.all(np.diff(flagged) <= 0) and np.all(np.diff(worth) <= 0) and worth[0] > worth[-1]


def test_report_max_twins_bounds_the_twins_a_card_shows_and_counts_the_rest():
    data, group, decisions, wrong = reviewed()
    in_groups = [c for c in page_data(data, group, decisions)["cards"] if c["twins"]]
    assert in_groups, "the graded case has twin groups"
    for card in page_data(data, group, decisions, max_twins=0)["cards"]:
        total = (
            len(next(c for c in in_groups if c["index"] == card["index"])["twins"])
            if card["index"] in {c["index"] for c in in_groups}
            else 0
        )
        assert card["twins"] == [] and card["more_twins"] == total
