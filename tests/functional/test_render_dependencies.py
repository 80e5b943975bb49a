"""A render's external dependencies with real Blender: a scene that links an object from a library file and uses an
image texture; traced, refused when missing, rendered when present, packed and rendered from the pack.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batchpipe.cli import main
from batchpipe.errors import InputError
from batchpipe.rendering.dependencies import trace_dependencies
from batchpipe.rendering.pack import extract_pack, pack_blend
from tests.conftest import need_tool

pytestmark = pytest.mark.slow

# One Blender run makes the whole project: lib/props.blend with an object 'Prop' textured with tex/prop.png (the
# library's own dependency), tex/wood.png, and scene.blend (16x12, one Cycles sample, frame 1 only) that links
# 'Prop' into its scene and textures its cube with wood.png; and scene_outside.blend, whose texture is
# ../shared/wood.png, beside the project.
PROJECT_SCRIPT = """
import bpy, os, shutil, sys
root = sys.argv[sys.argv.index("--") + 1]
bpy.context.preferences.filepaths.save_version = 0  # no scene.blend1 backups
s = bpy.context.scene
s.render.engine = "CYCLES"
s.cycles.samples = 1
s.cycles.use_denoising = False
s.render.resolution_x, s.render.resolution_y, s.render.resolution_percentage = 16, 12, 100
s.frame_start = s.frame_end = 1
os.makedirs(os.path.join(root, "lib"))
os.makedirs(os.path.join(root, "tex"))
lib = os.path.join(root, "lib", "props.blend")
def texture(name, path):
    img = bpy.data.images.new(name, 4, 4)
    img.filepath_raw = path
    img.file_format = "PNG"
    img.save()
    img.source = "FILE"
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
    tex.image = img
    mat.node_tree.links.new(tex.outputs["Color"], mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"])
    return img, mat
mesh = bpy.data.meshes.new("PropMesh")
mesh.from_pydata([(0, 0, 2), (1, 0, 2), (0, 1, 2)], [], [(0, 1, 2)])
prop_img, prop_mat = texture("prop", os.path.join(root, "tex", "prop.png"))  # the library's own texture
mesh.materials.append(prop_mat)
prop = bpy.data.objects.new("Prop", mesh)
bpy.data.libraries.write(lib, {prop}, path_remap="RELATIVE_ALL", compress=True)  # //../tex/prop.png
bpy.data.objects.remove(prop)
bpy.data.meshes.remove(mesh)
bpy.data.materials.remove(prop_mat)
bpy.data.images.remove(prop_img)
img, mat = texture("wood", os.path.join(root, "tex", "wood.png"))
scene = os.path.join(root, "scene.blend")
bpy.ops.wm.save_as_mainfile(filepath=scene)  # saved once first: relative paths need the file's place
with bpy.data.libraries.load(lib, link=True, relative=True) as (src, dst):
    dst.objects = ["Prop"]
s.collection.objects.link(dst.objects[0])
img.filepath = "//tex/wood.png"
bpy.data.objects["Cube"].data.materials.append(mat)
bpy.ops.wm.save_as_mainfile(filepath=scene, compress=True)
# scene_outside.blend: the same scene, its texture outside the project (../shared/wood.png)
os.makedirs(os.path.join(root, "..", "shared"))
shutil.copy(os.path.join(root, "tex", "wood.png"), os.path.join(root, "..", "shared", "wood.png"))
img.filepath = "//../shared/wood.png"
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(root, "scene_outside.blend"), compress=True, copy=True)
"""


@pytest.fixture(scope="session")
def made_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for name in ("blender", "ffmpeg", "ffprobe"):
        need_tool(name)
    base = tmp_path_factory.mktemp("linked-project")
    script = base / "make_project.py"
    script.write_text(PROJECT_SCRIPT)
    root = base / "world" / "project"
    run = subprocess.run(
        [need_tool("blender"), "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(script),
         "--", str(root)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0 and (root / "scene.blend").is_file(), run.stdout[-2000:] + run.stderr[-2000:]
    return root


@pytest.fixture
def project(made_project: Path, tmp_path: Path) -> Path:
    """A copy of the project (and of the shared directory beside it) of this test's own, to move files around in."""
    return Path(shutil.copytree(made_project.parent, tmp_path / "world")) / "project"


def render(blend: Path, out: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        ["run", "render", str(blend), "--local", "--output", str(out), "--job-name", "t", "--frames-per-job", "1",
         "--workers", "1", *args],
        catch_exceptions=False,
    )  # fmt: skip


def one_line(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines


def test_trace_finds_the_linked_library_the_texture_and_the_librarys_own_texture(project: Path) -> None:
    found = trace_dependencies(project / "scene.blend")
    assert found.blend == project / "scene.blend"
    by_written = {d.written: d for d in found.items}
    assert set(by_written) == {"//lib/props.blend", "//tex/wood.png", "//../tex/prop.png"}
    lib, tex = by_written["//lib/props.blend"], by_written["//tex/wood.png"]
    assert (lib.kind, lib.path, lib.blend, lib.exists) == ("library", project / "lib" / "props.blend",
                                                           project / "scene.blend", True)  # fmt: skip
    assert (tex.kind, tex.path, tex.exists, tex.sequence) == ("image", project / "tex" / "wood.png", True, False)
    prop = by_written["//../tex/prop.png"]  # written in the library, relative to it
    assert (prop.kind, prop.path, prop.blend) == ("image", project / "tex" / "prop.png", lib.path)
    assert found.missing == ()
    assert found.files == tuple(project / p for p in ("lib/props.blend", "tex/prop.png", "tex/wood.png"))


def test_a_missing_library_refuses_the_render_and_allow_missing_renders_with_a_warning(
    project: Path, tmp_path: Path
) -> None:
    (project / "lib" / "props.blend").rename(tmp_path / "props.blend")
    out = tmp_path / "out"
    refused = render(project / "scene.blend", out)
    assert refused.exit_code == 2, refused.output + refused.stderr
    assert one_line(refused.stderr).endswith(
        f"error: {project / 'scene.blend'}: 1 missing dependency: //lib/props.blend (library); "
        "--allow-missing renders without them"
    ), refused.stderr
    assert not out.exists()  # nothing claimed, nothing rendered
    allowed = render(project / "scene.blend", out, "--allow-missing")
    assert allowed.exit_code == 0, allowed.output + allowed.stderr
    assert "1 missing dependency: //lib/props.blend (library); rendering without them (--allow-missing)" in (
        one_line(allowed.stderr)
    )
    assert (out / "frames" / "0001.png").is_file() and (out / "output.mp4").is_file()


def test_missing_textures_of_the_scene_and_of_its_library_refuse_the_render_and_leave_the_output_as_it_was(
    project: Path, tmp_path: Path
) -> None:
    (project / "tex" / "wood.png").unlink()
    (project / "tex" / "prop.png").unlink()
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    refused = render(project / "scene.blend", out)
    assert refused.exit_code == 2, refused.output + refused.stderr
    assert "2 missing dependencies: //tex/wood.png (image), //../tex/prop.png (image, in //lib/props.blend);" in (
        one_line(refused.stderr)
    )
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def test_with_the_library_present_the_render_succeeds(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = render(project / "scene.blend", out)
    assert result.exit_code == 0, result.output + result.stderr
    assert "missing" not in result.stderr
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["0001.png"]


def render_frame(blend: Path, out: Path) -> str:
    """Frame 1 of the file with Blender itself (its own command line, not batchpipe's): Blender's output."""
    run = subprocess.run(
        [need_tool("blender"), "-b", "--factory-startup", "--disable-autoexec", str(blend), "--render-output",
         str(out / "f_####"), "--render-format", "PNG", "--render-frame", "1"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert (out / "f_0001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", run.stdout[-2000:]
    return run.stdout + run.stderr


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_pack_is_self_contained_extracted_elsewhere_it_traces_complete_and_renders(
    project: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "packs" / "scene.zip"
    manifest = pack_blend(project / "scene.blend", archive)
    assert manifest.blend == "scene.blend" and manifest.missing == []
    assert [f.path for f in manifest.files] == ["lib/props.blend", "pack-info.txt", "scene.blend", "tex/prop.png",
                                                "tex/wood.png"]  # fmt: skip
    assert (manifest.zip_sha256, manifest.zip_size) == (sha256(archive), archive.stat().st_size)
    assert [p.name for p in archive.parent.iterdir()] == ["scene.zip"]  # no partial file left
    shutil.rmtree(project.parent)  # the originals are gone: nothing may still point at them
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    blend = extract_pack(archive, elsewhere, manifest)
    assert blend == elsewhere.resolve() / "scene.blend"
    assert {f.path: (f.size, f.sha256) for f in manifest.files} == {
        p.relative_to(blend.parent).as_posix(): (p.stat().st_size, sha256(p)) for p in elsewhere.rglob("*")
        if p.is_file()
    }  # fmt: skip
    found = trace_dependencies(blend)
    assert found.missing == ()
    assert {(d.kind, d.written) for d in found.items} == {("library", "//lib/props.blend"),
                                                           ("image", "//tex/wood.png"),
                                                           ("image", "//../tex/prop.png")}  # fmt: skip
    assert all(f.is_relative_to(blend.parent) for f in found.files) and len(found.files) == 3
    log = render_frame(blend, tmp_path / "frames")
    assert f"Read library:  '{blend.parent / 'lib' / 'props.blend'}'" in log
    assert "Cannot find lib" not in log and "Unable to open" not in log
    assert "Loading wood.png" in log and "Loading prop.png" in log


def test_a_texture_outside_the_project_is_packed_inside_and_its_path_rewritten(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "pack"
    manifest = pack_blend(project / "scene_outside.blend", target)
    assert manifest.zip_sha256 is None and manifest.blend == "scene_outside.blend"
    outside = [f.path for f in manifest.files if f.path.startswith("_outside_project/")]
    assert len(outside) == 1 and outside[0].endswith("/shared/wood.png")
    shutil.rmtree(project.parent)
    found = trace_dependencies(target / "scene_outside.blend")
    assert found.missing == ()
    assert sorted(d.written for d in found.items) == ["//../tex/prop.png",
                                                      "//_outside_project/" + outside[0].split("/", 1)[1],
                                                      "//lib/props.blend"]  # fmt: skip
    log = render_frame(target / "scene_outside.blend", tmp_path / "frames")  # BAT rewrote (and gzipped) the file
    assert "Cannot find lib" not in log and "Loading wood.png" in log


def test_a_pack_refuses_missing_dependencies_or_lists_them_when_allowed(project: Path, tmp_path: Path) -> None:
    (project / "lib" / "props.blend").unlink()
    archive = tmp_path / "scene.zip"
    with pytest.raises(InputError, match=r"1 missing dependency: //lib/props.blend \(library\); --allow-missing "
                       r"packs without them$"):  # fmt: skip
        pack_blend(project / "scene.blend", archive, name="scene.blend")
    assert not archive.exists()
    warnings: list[str] = []
    manifest = pack_blend(project / "scene.blend", archive, allow_missing=True, warn=warnings.append)
    assert manifest.missing == ["//lib/props.blend"] and len(warnings) == 1
    # what the missing library itself uses cannot be known: tex/prop.png is not packed
    assert [f.path for f in manifest.files] == ["pack-info.txt", "scene.blend", "tex/wood.png"]
    with pytest.raises(InputError, match="exists and is not an empty directory"):
        pack_blend(project / "scene.blend", project, allow_missing=True)
