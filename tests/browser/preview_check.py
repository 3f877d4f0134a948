"""End-to-end check of the editor preview page in a real headless Chromium (run by .ci/run).

Usage: preview_check.py BASE_URL ARTICLE_FILE SCREENSHOT_DIR

Opens BASE_URL/, types the article (first non-empty line: title; the rest up to a "Weitere Meldungen"
block: text) into the form, previews, and asserts that related stories with their shared terms and the
left-out table appear; then clears the draft, previews again and asserts that the server's error message
is shown, on screen. Saves preview.png, preview-tall.png and preview-error.png into SCREENSHOT_DIR.
"""

import pathlib
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as visible
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without these, Chromium tries to reach the internet (updates, sync, field trials).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
# A laptop screen.
WINDOW = (1366, 900)
# The README's picture.
TALL_WINDOW_HEIGHT = 1500
WAIT_SECONDS = 30


def read_article(path):
    """The title (first non-empty line) and the text of an article file, without a trailing block."""
    text = pathlib.Path(path).read_text(encoding="utf-8").split("Weitere Meldungen")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0], "\n".join(lines[1:])


def browser(profile):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The page's console (failed requests included), printed when a check fails.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def main(base_url, article_file, screenshots):
    title, body = read_article(article_file)
    screenshots = pathlib.Path(screenshots)
    screenshots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="weitere-chromium-") as profile:
        driver = browser(profile)
        try:
            wait = WebDriverWait(driver, WAIT_SECONDS)
            driver.get(base_url + "/")
            assert driver.title.startswith("weitere"), driver.title
            # Reach the fields by their labels, as a screen reader user would.
            field = lambda label: driver.find_element(
                By.ID, driver.find_element(By.XPATH, f"//label[normalize-space()='{label}']").get_attribute("for")
            )
            field("Title").send_keys(title)
            field("Text").send_keys(body)
            stories_field = field("Stories (1–100)")
            stories_field.clear()
            stories_field.send_keys("5")
            # Submit from the keyboard: Ctrl+Enter in the text.
            field("Text").send_keys(Keys.CONTROL, Keys.ENTER)
            wait.until(visible.visibility_of_element_located((By.CSS_SELECTOR, "#stories li")))
            stories = driver.find_elements(By.CSS_SELECTOR, "#stories > li")
            assert 1 <= len(stories) <= 5, len(stories)
            for story in stories:
                terms = [term.text for term in story.find_elements(By.CSS_SELECTOR, ".terms li")]
                assert terms and all(terms), f"a story without shared terms: {story.text}"
                assert "score" in story.find_element(By.CSS_SELECTOR, ".meta").text
            left_out = driver.find_elements(By.CSS_SELECTOR, "#left-out tbody tr")
            assert left_out, "no left-out candidates listed"
            status = driver.find_element(By.ID, "status").text
            assert "in the block" in status, status
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(str(screenshots / "preview.png"))
            # Taller, for the README: the block and the left-out table in one picture.
            driver.set_window_size(WINDOW[0], TALL_WINDOW_HEIGHT)
            driver.save_screenshot(str(screenshots / "preview-tall.png"))
            driver.set_window_size(*WINDOW)
            print(f"preview: {len(stories)} stories, {len(left_out)} left out; first: {stories[0].text.splitlines()[0]}")

            field("Title").clear()
            field("Text").clear()
            driver.find_element(By.ID, "submit").click()
            error = wait.until(visible.visibility_of_element_located((By.ID, "error")))
            assert "empty" in error.text, error.text
            # The answer column stays in view beside the form: the error is on screen, not above it.
            top = driver.execute_script("return arguments[0].getBoundingClientRect().top", error)
            assert 0 <= top < WINDOW[1], f"the error message is off screen (top {top})"
            assert not driver.find_element(By.ID, "answer").is_displayed()
            driver.save_screenshot(str(screenshots / "preview-error.png"))
            print(f"empty draft: {error.text}")
        except Exception:
            for entry in driver.get_log("browser"):
                print(f"browser console: {entry['level']} {entry['message']}", file=sys.stderr)
            raise
        finally:
            driver.quit()


if __name__ == "__main__":
    main(*sys.argv[1:4])
