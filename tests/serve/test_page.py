"""The page in a real headless Chromium against a real `koe serve`: typed, uploaded, recorded and bad input."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 120


@pytest.fixture
def page(browser, server):
    browser.get(server)
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
                                         == "1")
    return browser


def last_turn(driver):
    """Waits until the newest turn is finished (its audio, if any, assembled); returns it."""
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".turn") and
        d.find_elements(By.CSS_SELECTOR, ".turn")[-1].get_attribute("data-done") == "1")
    return driver.find_elements(By.CSS_SELECTOR, ".turn")[-1]


def audio_duration_s(driver, turn) -> float:
    """Seconds of the turn's assembled answer audio, as the browser decoded it."""
    audio = turn.find_element(By.CSS_SELECTOR, "audio.answer-audio")
    WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script("return arguments[0].readyState", audio) >= 1)
    return float(driver.execute_script("return arguments[0].duration", audio))


def check_spoken_answer(driver, turn) -> None:
    text = turn.find_element(By.CSS_SELECTOR, ".answer-text").text
    assert text and "(no text in this answer)" not in text
    assert int(turn.get_attribute("data-chunks")) >= 2  # streamed in several chunks (chunk_units=6)
    latency = turn.find_element(By.CSS_SELECTOR, ".latency").text
    assert re.search(r"first text \d+ ms · first audio \d+ ms · total \d+ ms", latency), latency
    server_s = float(re.search(r"([\d.]+) s of speech", latency).group(1))
    assert server_s > 0.1 and audio_duration_s(driver, turn) == pytest.approx(server_s, abs=0.01)  # every chunk


def upload(driver, path: Path) -> None:
    driver.find_element(By.ID, "wav-file").send_keys(str(path))
    driver.find_element(By.ID, "send-file").click()


def message(driver, kind: str) -> str:
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, "message").get_attribute("class") == kind
                                        and d.find_element(By.ID, "message").text)
    return driver.find_element(By.ID, "message").text


def test_typed_question_gets_streamed_text_and_speech(page, tmp_path):
    options = page.find_elements(By.CSS_SELECTOR, "#strategy option")
    assert [o.get_attribute("value") for o in options] == ["think_then_speak", "text", "speech"]
    assert not page.find_element(By.ID, "voice-label").is_displayed()  # the baseline vocoder has no speakers
    page.find_element(By.ID, "text-input").send_keys("what does the dog see ?")
    page.find_element(By.ID, "send").click()
    turn = last_turn(page)
    assert turn.find_element(By.CSS_SELECTOR, ".user").text.endswith("what does the dog see ?")
    check_spoken_answer(page, turn)
    assert "turn 1 of the conversation" in turn.find_element(By.CSS_SELECTOR, ".latency").text
    shot = Path(os.environ.get("KOE_SERVE_SCREENSHOT", tmp_path / "serve.png"))
    page.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_uploaded_wav_gets_text_and_speech_and_history_resets(page, assets):
    upload(page, assets["question"])
    turn = last_turn(page)
    assert "question.wav" in turn.find_element(By.CSS_SELECTOR, ".user").text
    check_spoken_answer(page, turn)
    page.find_element(By.ID, "text-input").send_keys("and the fox ?")
    page.find_element(By.ID, "send").click()
    second = last_turn(page)
    assert "turn 2 of the conversation" in second.find_element(By.CSS_SELECTOR, ".latency").text
    page.find_element(By.ID, "reset").click()
    assert message(page, "info") == "conversation cleared"
    assert page.find_elements(By.CSS_SELECTOR, ".turn") == []
    page.find_element(By.ID, "text-input").send_keys("hello")
    page.find_element(By.ID, "send").click()
    assert "turn 1 of the conversation" in last_turn(page).find_element(By.CSS_SELECTOR, ".latency").text


@pytest.mark.parametrize(("name", "expected"), [
    ("bad", "unsupported format: bad.wav: soundfile does not recognise the format"),
    ("notes", "unsupported format: notes.txt"),
    ("long", "too long: long.wav: 8.0 s of audio; at most 5 s"),
    ("silent", "empty: silent.wav: the audio is silent"),
])
def test_bad_file_shows_the_error_on_the_page(page, assets, name, expected):
    upload(page, assets[name])
    assert message(page, "error").startswith(expected)
    assert page.find_elements(By.CSS_SELECTOR, ".turn") == []
    assert "Traceback" not in page.page_source
    page.find_element(By.ID, "text-input").send_keys("still there ?")  # the page goes on working
    page.find_element(By.ID, "send").click()
    assert last_turn(page).get_attribute("data-done") == "1"


def test_empty_text_is_refused_on_the_page(page):
    page.find_element(By.ID, "send").click()
    assert message(page, "error").startswith("empty: type a question")


def test_microphone_recording_gets_an_answer(page):
    page.find_element(By.ID, "record").click()  # Chromium's fake microphone (--use-fake-device-for-media-stream)
    WebDriverWait(page, WAIT_S).until(lambda d: "recording" in d.find_element(By.ID, "record").get_attribute("class"))
    time.sleep(1.5)
    page.find_element(By.ID, "record").click()
    turn = last_turn(page)
    assert "recording.wav" in turn.find_element(By.CSS_SELECTOR, ".user").text
    check_spoken_answer(page, turn)
