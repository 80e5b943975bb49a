"""A failed shard's one-line error: Blender's own Error: lines first (distinct, in order, a few), its exit code (the
signal of a crash), the first lines of its crash report, the frames missing and where the whole log is; the lines
are the ones Debian's Blender 3.4 prints."""

from __future__ import annotations

from pathlib import Path

from batchpipe.rendering.blenderlog import (
    CRASH_LINES,
    ERROR_LINES,
    BlenderOutput,
    exit_text,
    log_name,
    read_crash_report,
    shard_error,
)

PROGRESS = [f"Fra:1 Mem:9.40M (Peak 10.83M) | Time:00:00.09 | Scene, ViewLayer | Updating step {i}" for i in range(40)]
DENOISER = [
    "Blender 3.4.1",
    "Read blend: /runs/scene.blend",
    *PROGRESS,
    "Build without OpenImageDenoiser",
    "No device available to denoise on",
    "Fra:1 Mem:9.90M (Peak 10.83M) | Time:00:00.09 | Scene, ViewLayer | Build without OpenImageDenoiser",
    "Error: Build without OpenImageDenoiser",
    "",
    "Blender quit",
]
CRASH = ["Blender 3.4.1", "Read blend: /runs/scene.blend", *PROGRESS, "Writing: /tmp/scene.crash.txt"]
PYTHON = [
    "Blender 3.4.1",
    "Read blend: /runs/scene.blend",
    "Error: Python: Traceback (most recent call last):",
    '  File "<string>", line 4, in <module>',
    "    s = bpy.context.scene",
    "AttributeError: 'NoneType' object has no attribute 'render'",
    "",
    "Error: script failed, expr: '",
    "import bpy, json",
]


def test_a_render_error_leads_the_message() -> None:
    message = shard_error(3, 1, DENOISER, {7: "missing", 8: "missing"}, "logs/shard-00003.log")
    assert message == (
        "shard 3: Error: Build without OpenImageDenoiser; Blender exited with code 1; frames missing or invalid: "
        "7 (missing), 8 (missing); log: logs/shard-00003.log"
    )


def test_error_lines_are_distinct_in_order_and_a_few() -> None:
    lines = ["Error: Cannot read a.png", "Fra:1", "Error: Cannot read b.png", "Error: Cannot read a.png",
             "Error: Cannot read c.png", "Error: Cannot read d.png", *PROGRESS]  # fmt: skip
    message = shard_error(0, 1, lines, {1: "missing"}, None)
    assert ERROR_LINES == 3 and message == (
        "shard 0: Error: Cannot read a.png | Error: Cannot read b.png | Error: Cannot read c.png; Blender exited with "
        "code 1; frames missing or invalid: 1 (missing)"
    )


def test_a_python_traceback_is_its_exception() -> None:
    message = shard_error(0, 1, PYTHON, {1: "missing"}, "logs/shard-00000.log")
    assert message is not None and message.startswith(
        "shard 0: Error: Python: AttributeError: 'NoneType' object has no attribute 'render' | Error: script failed, "
        "expr: '; Blender exited with code 1; "
    )
    twice = [*PYTHON[2:6], "Fra:2", *PYTHON[2:6]]
    assert BlenderOutput().extend(twice).errors == [
        "Error: Python: AttributeError: 'NoneType' object has no attribute 'render'"
    ]
    unfinished = BlenderOutput().extend(PYTHON[:4])  # the log ends inside the traceback
    assert unfinished.errors == ["Error: Python: Traceback (most recent call last):"]


def test_a_crash_quotes_the_crash_report() -> None:
    report = ["# backtrace", "blender(BLI_system_backtrace+0x1d) [0x55d0]", "blender(+0x10c9f4e) [0x55d1]"]
    message = shard_error(1, -11, CRASH, {4: "missing"}, "logs/shard-00001.log", report)
    assert message == (
        "shard 1: Blender exited with code -11 (SIGSEGV, a crash); crash report /tmp/scene.crash.txt: # backtrace | "
        "blender(BLI_system_backtrace+0x1d) [0x55d0] | blender(+0x10c9f4e) [0x55d1]; frames missing or invalid: "
        "4 (missing); log: logs/shard-00001.log"
    )
    gone = shard_error(1, -11, CRASH, {4: "missing"}, None)
    assert gone is not None and "crash report /tmp/scene.crash.txt: (not readable); frames" in gone
    both = shard_error(1, -6, ["Error: out of memory", *CRASH], {4: "missing"}, None, report[:1])
    assert both is not None and both.startswith(
        "shard 1: Error: out of memory; Blender exited with code -6 (SIGABRT, a crash); crash report "
        "/tmp/scene.crash.txt: # backtrace; frames"
    )


def test_without_an_error_line_the_last_lines_say_where_it_stopped() -> None:
    message = shard_error(2, -9, ["Blender 3.4.1", *PROGRESS, ""], {5: "missing"}, "logs/shard-00002.log")
    assert message == (
        f"shard 2: Blender exited with code -9 (SIGKILL, out of memory?); last output: {PROGRESS[-3]} | "
        f"{PROGRESS[-2]} | {PROGRESS[-1]}; frames missing or invalid: 5 (missing); log: logs/shard-00002.log"
    )
    assert shard_error(2, 1, [], {}, None) == (
        "shard 2: Blender exited with code 1; last output: none; frames missing or invalid: none"
    )
    assert (
        exit_text(-15) == "Blender exited with code -15 (SIGTERM)" and exit_text(-99) == "Blender exited with code -99"
    )


def test_blender_exiting_0_with_bad_frames_and_a_good_shard() -> None:
    lines = ["Saved: '/out/0011.png'", " Time: 00:00.45 (Saving: 00:00.34)", "", "Blender quit"]
    assert shard_error(2, 0, lines, {11: "truncated PNG"}, "logs/shard-00002.log") == (
        "shard 2: Blender exited 0; frames missing or invalid: 11 (truncated PNG); log: logs/shard-00002.log"
    )
    assert shard_error(2, 0, lines, {}, "logs/shard-00002.log") is None


def test_the_message_is_one_line_of_bounded_length() -> None:
    lines = ["Error: " + "x" * 5000, "Error: two\tparts\r", "Writing: /tmp/a b.crash.txt"]
    message = shard_error(0, -11, lines, {1: "missing"}, None, ["line\nbreak " + "y" * 900])
    assert message is not None and "\n" not in message and "\r" not in message and "\t" not in message
    assert len(message) < 1000 and "Error: two parts" in message and "crash report /tmp/a b.crash.txt" in message


def test_what_is_kept_of_a_long_log_is_bounded() -> None:
    output = BlenderOutput(tail=5)
    for i in range(100_000):
        output.append(f"Fra:{i} Mem:1M | Rendering {i}\n")
        if i % 1000 == 0:
            output.append(f"Error: frame {i // 1000}\n")
    assert output.errors == ["Error: frame 0", "Error: frame 1", "Error: frame 2"]
    assert list(output.tail) == [f"Fra:{i} Mem:1M | Rendering {i}" for i in range(99_995, 100_000)]
    assert output.crash_report is None


def test_the_crash_report_and_the_log_are_named(tmp_path: Path) -> None:
    report = tmp_path / "scene.crash.txt"
    frames = "".join(f"frame {i}\n" for i in range(20))
    report.write_text(f'# Blender 3.4.1, Unknown revision\n\n# backtrace\n\n# Python backtrace\n  File "<string>", '
                      f"line 1 in <module>\n{frames}")  # fmt: skip
    lines = read_crash_report(str(report))
    assert len(lines) == CRASH_LINES and lines[:3] == [
        "# backtrace",
        "# Python backtrace",
        'File "<string>", line 1 in <module>',
    ]
    assert read_crash_report(str(tmp_path / "gone.crash.txt")) == [] and read_crash_report(None) == []
    assert log_name(tmp_path / "logs" / "shard-00001.log", tmp_path) == "logs/shard-00001.log"
    assert log_name(Path("/var/log/x.log"), tmp_path) == "/var/log/x.log" and log_name(None, tmp_path) is None
