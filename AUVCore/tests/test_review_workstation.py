"""``auv review`` driven in a real browser: Debian's Chromium through Playwright, against real servers.

The cohort is the small real one (crops of the sample CT and MR with TotalSegmentator's labels) scored by
``auv score --scorers all`` (the session fixture ``scored_all``); each test serves its own copy on a free
port. Pixels are read from the browser's screenshot of a view, never from the server.
"""

from __future__ import annotations

import base64
import http.client
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from auvcore.files import file_sha256
from auvcore.results import ResultsFolder, label_for, load_review, read_case_record
from auvcore.review.colour_plan import colour_plan
from auvcore.review.queue import ReviewQueue
from auvcore.review.worst_slices import where_to_look
from auvcore.workstation.driver import ReviewPage, ReviewServer, open_chromium
from auvcore.workstation.scene import FOCUS_FILL

from .test_report import CHROMIUM


#: Set to 1 (``.ci/run`` does) to fail instead of skipping where chromium or offscreen rendering is missing.
REQUIRE_BROWSER_TESTS = "AUV_REQUIRE_BROWSER_TESTS"


def _offscreen_rendering_problem() -> str:
    """Why the views cannot be drawn here ("" when they can), checked in a process of its own: this one loads
    PyTorch's triton, whose LLVM clashes with the LLVM of Mesa's renderer in one process (the server never imports
    PyTorch)."""
    check = subprocess.run([sys.executable, "-m", "auvcore.workstation.offscreen"], capture_output=True, text=True,
                           timeout=120)
    return "" if check.returncode == 0 else (check.stderr.strip() or check.stdout.strip())


OFFSCREEN_PROBLEM = _offscreen_rendering_problem()
NO_CHROMIUM = "" if CHROMIUM else "chromium is not installed (Debian: apt-get install chromium)"
if os.environ.get(REQUIRE_BROWSER_TESTS) == "1" and (NO_CHROMIUM or OFFSCREEN_PROBLEM):  # CI: never skipped there
    raise RuntimeError(f"{REQUIRE_BROWSER_TESTS}=1 but the browser tests cannot run: {NO_CHROMIUM or OFFSCREEN_PROBLEM}")
pytestmark = [
    pytest.mark.skipif(bool(NO_CHROMIUM), reason=NO_CHROMIUM or "chromium is installed"),
    pytest.mark.skipif(bool(OFFSCREEN_PROBLEM), reason=OFFSCREEN_PROBLEM or "the views render"),
]

#: The queue is ranked (and coloured) by a per-slice scorer, so each structure has a worst slice.
SCORE = "agreement"
#: JPEG frames blur colours by a few levels.
TOLERANCE = 26
#: The brush reaches this far (mm) from the stroke's line: its default diameter is 5% of the view's height.
BRUSH_REACH_MM = 30.0


@pytest.fixture(scope="module")
def browser():
    with open_chromium(CHROMIUM) as chromium:
        yield chromium


def _copy(scored_all: Path, tmp_path: Path) -> ResultsFolder:
    shutil.copytree(scored_all, tmp_path / "results")
    return ResultsFolder(tmp_path / "results")


def _snapshot(folder: ResultsFolder) -> dict[str, str]:
    """Every file of the folder and its content hash (the lock files, which readers may create, left out)."""
    return {str(p.relative_to(folder.root)): file_sha256(p) for p in sorted(folder.root.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}


def _blended(pixels: np.ndarray, colour: tuple[float, float, float], alpha: float = FOCUS_FILL) -> np.ndarray:
    """Where the view shows ``colour`` laid at ``alpha`` over a grey image: the pixel minus the colour's share is grey."""
    under = (pixels.astype(np.float64) - alpha * 255.0 * np.asarray(colour)) / (1.0 - alpha)
    grey = under.max(axis=2) - under.min(axis=2) <= TOLERANCE / (1.0 - alpha)
    return grey & (under.min(axis=2) >= -TOLERANCE) & (under.max(axis=2) <= 255 + TOLERANCE)


def _image_pixels(pixels: np.ndarray) -> int:
    """Grey, neither black nor white: the CT or MR itself."""
    spread = pixels.max(axis=2).astype(int) - pixels.min(axis=2).astype(int)
    return int(((spread <= 6) & (pixels.mean(axis=2) > 30) & (pixels.mean(axis=2) < 225)).sum())


def _expected(folder: ResultsFolder, position: int):
    """The queue's entry at ``position`` (0-based), its colour and its worst slice, as the core decides them."""
    queue = ReviewQueue.of_folder(folder.root, SCORE)
    entry = queue.entries[position]
    case = queue.cohort.case(entry.case_id)
    colour = colour_plan(case, SCORE, queue.cohort).colour(entry.structure)
    return entry, colour, where_to_look(case.record, entry.structure, SCORE)


def _torch_loaded(pid: int) -> list[str]:
    """The PyTorch libraries mapped into a process (``/proc/<pid>/maps``): none unless it imported torch."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return sorted({line.split()[-1] for line in maps.splitlines() if "libtorch" in line or "libc10" in line})


def _open_fix_and_paint(page: ReviewPage) -> None:
    """F, then a paint stroke once the views have settled (the Fix panel resizes them), drawn before going on."""
    page.press("F")
    page.page.locator("#auv-fix").wait_for()
    page.page.wait_for_timeout(500)
    page.wait_until_still()
    page.stroke()  # across the view's middle, where the view is centred on the structure


def _save(page: ReviewPage) -> str:
    """S, and the page's answer: "Saved corrections/..." (anything else fails the test, saying what it was)."""
    page.press("S")
    try:
        message = page.wait_for_message("Saved corrections/", "Nothing to save")
    except Exception as error:  # say what the page showed instead
        shown = page.page.locator("#auv-message, #auv-conflict, #auv-unsaved").all_inner_texts()
        raise AssertionError(f"no answer to Save; the page shows {shown}") from error
    assert message.startswith("Saved corrections/"), message
    return message


def _far_from_the_stroke(label: sitk.Image, ras: tuple[float, float, float]) -> np.ndarray:
    """Voxels (z, y, x) farther than the brush reaches from the axial line through ``ras`` along the view's width."""
    size = label.GetSize()
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in size], indexing="ij"), axis=-1).reshape(-1, 3)
    direction = np.asarray(label.GetDirection()).reshape(3, 3)
    lps = np.asarray(label.GetOrigin()) + (grid * np.asarray(label.GetSpacing())) @ direction.T
    far = (np.abs(-lps[:, 1] - ras[1]) > BRUSH_REACH_MM) | (np.abs(lps[:, 2] - ras[2]) > BRUSH_REACH_MM)
    return far.reshape(size).transpose(2, 1, 0)


def test_the_queue_colours_verdicts_and_a_saved_fix_in_chromium(scored_all: Path, tmp_path: Path, browser):
    folder = _copy(scored_all, tmp_path)
    total = len(ReviewQueue.of_folder(folder.root, SCORE).entries)
    first, first_colour, first_slice = _expected(folder, 0)
    second, second_colour, second_slice = _expected(folder, 1)
    assert first_slice is not None and second_slice is not None
    with ReviewServer.start(folder.root, "--score", SCORE) as server:
        page = ReviewPage.open(browser, server.address)
        page.wait_for_text("auv-current-title", f"1 of {total}: {first.case_id} / {first.structure}")
        assert f"slice {first_slice.index}," in page.text("auv-current-detail")  # the views are at its worst slice
        before = page.view_pixels("axial")
        assert _image_pixels(before) > 2000, "the axial view shows no image"
        assert _blended(before, first_colour).sum() > 100, f"the axial view shows no {first.structure} in {first_colour}"

        page.press("N")  # the next structure: the text, the views and the colour follow
        page.wait_for_text("auv-current-title", f"2 of {total}: {second.case_id} / {second.structure}")
        assert f"slice {second_slice.index}," in page.text("auv-current-detail")
        page.page.wait_for_timeout(1500)
        after = page.view_pixels("axial")
        assert _blended(after, second_colour).sum() > 100, f"the axial view shows no {second.structure} in {second_colour}"
        assert np.abs(after.astype(int) - before.astype(int)).mean() > 1.0, "the axial view did not change"

        page.page.locator("#auv-note").fill("misses the upper pole")
        page.press("Escape")  # leave the note field, as the field's label says, then give the verdict
        page.press("2")
        page.wait_for_text("auv-current-title", f"3 of {total}")  # a verdict moves on, as in the module
        verdict = load_review(folder.review).get(second.case_id, second.structure)
        assert (verdict.verdict, verdict.note) == ("needs_fix", "misses the upper pole")

        third, _, third_slice = _expected(folder, 2)
        source = folder.recorded_path(read_case_record(folder.case_json(third.case_id)).label)
        source_hash = file_sha256(source)
        _open_fix_and_paint(page)
        _save(page)

        correction = folder.root / "corrections" / f"{third.case_id}.nii.gz"
        assert file_sha256(source) == source_hash  # the source is only read
        saved, original = sitk.ReadImage(str(correction)), sitk.ReadImage(str(source))
        assert saved.GetSize() == original.GetSize() and saved.GetPixelID() == original.GetPixelID()
        changed = sitk.GetArrayFromImage(saved) != sitk.GetArrayFromImage(original)
        assert changed.any(), "the stroke changed nothing"
        far = _far_from_the_stroke(original, third_slice.ras)
        assert not (changed & far).any(), f"{int((changed & far).sum())} voxels changed far from the stroke"
        review = load_review(folder.review)
        assert review.get(third.case_id, third.structure).verdict == "fixed"
        assert review.get(second.case_id, second.structure).verdict == "needs_fix"  # kept

        painted = _blended(page.view_pixels("axial"), _expected(folder, 2)[1]).sum()
        page.page.reload()  # a new page on the same server: what it shows is what was saved
        page.wait_ready()
        page.wait_for_text("auv-current-title", f"3 of {total}: {third.case_id} / {third.structure}")
        page.page.wait_for_timeout(2500)
        assert f"corrections/{third.case_id}.nii.gz" in page.text("auv-current-label")
        reloaded = page.view_pixels("axial")
        assert _blended(reloaded, _expected(folder, 2)[1]).sum() >= 0.8 * painted, "the reload lost the painted voxels"

        page.press("E")  # the explain pictures come from the stored feature cache
        page.page.locator("#auv-explain img").first.wait_for(timeout=120_000)
        assert _torch_loaded(server.process.pid) == []  # no model: torch was never imported
    assert label_for(folder, third.case_id, source).corrected


def test_read_only_offers_no_editor_writes_nothing_and_a_wrong_token_is_refused(scored_all: Path, tmp_path: Path,
                                                                               browser):
    folder = _copy(scored_all, tmp_path)
    before = _snapshot(folder)
    with ReviewServer.start(folder.root, "--score", SCORE, "--read-only", "--token", "let-me-in") as server:
        assert server.address.endswith("/?token=let-me-in")
        for wrong in (server.address.replace("let-me-in", "let-me-out"), server.address.split("?")[0]):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(wrong.replace("/?", "/index.html?") if "?" in wrong else wrong + "index.html")
            assert refused.value.code == 403
        page = browser.new_page()
        answer = page.goto(server.address.replace("let-me-in", "wrong"))
        assert answer.status == 403 and "wrong or missing token" in page.content()
        page.close()
        assert _websocket_answer(server.port) == 403 and _websocket_answer(server.port, "?token=wrong") == 403
        assert _websocket_answer(server.port, "?token=let-me-in") == 101

        page = ReviewPage.open(browser, server.address)
        assert page.page.locator("#auv-read-only").is_visible()
        assert page.page.locator("#auv-tab-fix").count() == 0 and page.page.locator("#auv-correct").count() == 0
        for key in ("2", "3", "F", "S", "N", "1"):  # verdict and fix keys do nothing here; N moves
            page.press(key)
            page.page.wait_for_timeout(400)
        page.wait_for_text("auv-current-title", "2 of")
    assert _snapshot(folder) == before


def _websocket_answer(port: int, query: str = "") -> int:
    """The HTTP status of a websocket handshake on the server's ``/ws`` (101: opened)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", f"/ws{query}", headers={
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(b"auv-review-test!").decode()})
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_server_killed_during_a_save_leaves_the_previous_files_whole(scored_all: Path, tmp_path: Path, browser):
    folder = _copy(scored_all, tmp_path)
    entry, _, _ = _expected(folder, 0)
    source = folder.recorded_path(read_case_record(folder.case_json(entry.case_id)).label)
    source_hash = file_sha256(source)
    server = ReviewServer.start(folder.root, "--score", SCORE)
    try:
        page = ReviewPage.open(browser, server.address)
        _open_fix_and_paint(page)
        _save(page)
        first = label_for(folder, entry.case_id, source)
        first_voxels = sitk.GetArrayFromImage(sitk.ReadImage(str(first.path)))

        page.page.locator("#auv-fix .mdi-eraser").first.click()  # now erase across the structure, and save again
        page.stroke()  # the eraser across the same line
        lines = len(server.lines)
        page.press("S")
        server.wait_for(f"writing the correction of {entry.case_id}", 60, after=lines)
        server.kill()  # during the save (SIGKILL: nothing of the server runs on)
    finally:
        server.kill()
    assert file_sha256(source) == source_hash
    review = load_review(folder.review)  # whole JSON
    now = label_for(folder, entry.case_id, source)  # the current correction is whole (its SHA-256 as recorded)
    voxels = sitk.GetArrayFromImage(sitk.ReadImage(str(now.path)))
    assert now.correction is not None and review.get(entry.case_id, entry.structure).verdict == "fixed"
    if now.correction.sha256 == first.correction.sha256:
        assert np.array_equal(voxels, first_voxels)  # the kill came first: the first correction stands, whole
    else:
        assert len(review.corrections[entry.case_id]) == 2  # the save finished: the first is kept beside it


def test_two_reviewers_on_one_folder_keep_every_verdict_and_both_corrections(scored_all: Path, tmp_path: Path,
                                                                             browser):
    folder = _copy(scored_all, tmp_path)
    entries = ReviewQueue.of_folder(folder.root, SCORE).entries
    with ReviewServer.start(folder.root, "--score", SCORE) as ana_server, \
            ReviewServer.start(folder.root, "--score", SCORE) as ben_server:
        ana, ben = ReviewPage.open(browser, ana_server.address), ReviewPage.open(browser, ben_server.address)
        ben.page.locator("#auv-queue tbody tr").nth(2).click()  # Ben starts at the third structure
        ben.wait_for_text("auv-current-title", "3 of")
        for page, key, then in ((ana, "1", "2 of"), (ben, "2", "4 of"), (ana, "3", "3 of"), (ben, "2", "5 of")):
            page.press(key)  # each verdict is written at once, between the other reviewer's
            page.wait_for_text("auv-current-title", then)
        for page in (ana, ben):  # both fix the first structure, from the same source
            page.page.locator("#auv-queue tbody tr").first.click()
            page.wait_for_text("auv-current-title", "1 of")
            _open_fix_and_paint(page)
        _save(ana)
        ben.press("S")  # Ben opened the case before Ana saved: he is told, and saving anyway keeps both
        ben.page.locator("#auv-conflict").filter(has_text="after you opened the case").wait_for(timeout=60_000)
        ben.page.locator("#auv-conflict button").filter(has_text="Save anyway").click()
        ben.page.locator("#auv-message").filter(has_text="Saved corrections/").wait_for(timeout=60_000)
    review = load_review(folder.review)
    given = [review.get(e.case_id, e.structure) for e in entries[:4]]
    assert [v.verdict if v else None for v in given] == ["fixed", "unsure", "needs_fix", "needs_fix"]
    history = review.corrections[entries[0].case_id]
    assert len(history) == 2 and all((folder.root / c.file).is_file() for c in history)
