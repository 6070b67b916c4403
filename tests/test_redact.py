"""Camera passwords stay out of messages and log lines (edge/redact.py), without garbling the rest."""

from __future__ import annotations

import io
import json
import logging

from edge.config import config_from_dict
from edge.logs import JsonFormatter, TextFormatter
from edge.redact import without_credentials


def test_urls_query_passwords_and_raw_special_characters_are_hidden() -> None:
    assert without_credentials("open rtsp://admin:pw@10.0.0.5:554/s1 or http://u:p@cam.local/sub") == \
        "open rtsp://***@10.0.0.5:554/s1 or http://***@cam.local/sub"
    assert without_credentials("rtsp://u:p@[::1]:554/x") == "rtsp://***@[::1]:554/x"
    assert without_credentials("GET http://cam/videostream.cgi?user=admin&pwd=Zq7s&rate=0") == \
        "GET http://cam/videostream.cgi?user=admin&pwd=***&rate=0"
    assert without_credentials("rtsp://admin:p@ss/w0rd@cam/x") == "rtsp://***@cam/x"  # raw @ and /


def test_a_config_with_a_password_full_of_quotes_and_spaces_hides_it_in_any_later_message() -> None:
    # the pattern stops at quotes and spaces; the config remembers the camera URL's credentials
    config_from_dict({"camera": {"device": "rtsp://admin:it's \"Zq7 q@cam2.lan/main"}})
    text = without_credentials("camera failed: OSError: 'rtsp://admin:it's \"Zq7 q@cam2.lan/main' unreachable")
    assert "Zq7" not in text and "it's" not in text and "rtsp://***@cam2.lan/main" in text


def test_what_is_remembered_is_only_hidden_in_front_of_an_at_sign() -> None:
    without_credentials("rtsp://a:b@cam3/x")  # a short password...
    without_credentials("rtsp://admin@cam4/x")  # ...and a user name without one
    # ...do not garble unrelated text: only "a:b@" (a URL's credentials) is hidden
    assert without_credentials("ratio a:b, 10:a:b; the admin page /admin/index") == \
        "ratio a:b, 10:a:b; the admin page /admin/index"


def test_every_log_line_is_scrubbed_in_text_and_json() -> None:
    url = "rtsp://cam:sp ace" + '"' + "Zq7@cam5/x"  # built here: a traceback shows its source line
    config_from_dict({"camera": {"device": url}})
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("consentcam.test-redact")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for formatter in (TextFormatter(), JsonFormatter()):
            handler.setFormatter(formatter)
            try:
                raise OSError(f"cannot open '{url}'")
            except OSError:
                logger.exception("camera failed on %s", url, extra={"device": url})
    finally:
        logger.removeHandler(handler)
    text, json_line = stream.getvalue().split("\n", 1)[0], stream.getvalue().strip().splitlines()[-1]
    assert "Zq7" not in stream.getvalue(), stream.getvalue()
    assert "camera failed on rtsp://***@cam5/x" in text
    record = json.loads(json_line)
    assert record["device"] == "rtsp://***@cam5/x" and "rtsp://***@cam5/x" in record["exc"]


def test_an_error_the_cli_prints_is_scrubbed_too(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import run_cli

    config = tmp_path / "config.yaml"
    config.write_text("camera:\n  source: opencv\n  device: \"rtsp://admin:it's Zq7@127.0.0.1:9/cam\"\n")
    res = run_cli("camera", "check", config=config)
    assert res.returncode == 1 and "Zq7" not in res.stdout + res.stderr
    res = run_cli("--config", str(config), "detect", "rtsp://admin:it's Zq7@127.0.0.1:9/cam")
    assert res.returncode != 0 and "Zq7" not in res.stdout + res.stderr, res.stderr
