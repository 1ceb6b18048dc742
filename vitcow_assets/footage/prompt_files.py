"""Finding a video's prompt file and turning it (or a default) into a prompt plan."""

from pathlib import Path

from vitcow_assets.core.prompts import MAX_PROMPT_FILE_BYTES, PROMPT_SUFFIXES, PromptFileError, PromptPlan, parse_prompt_file, text_plan


def prompt_file_for(video_path: str | Path) -> Path | None:
    """``<stem>.prompts.yaml`` (or ``.yml``/``.json``) beside the video, if there is one."""
    video = Path(video_path)
    for suffix in PROMPT_SUFFIXES:
        candidate = video.with_name(video.stem + suffix)
        try:
            if candidate.is_file():
                return candidate
        except OSError:  # e.g. ENAMETOOLONG: a long video name leaves no room for the suffix
            continue
    return None


def video_stem_of_prompt_file(path: str | Path) -> str | None:
    """The video stem a prompt file belongs to (``barn.prompts.yaml`` -> ``barn``)."""
    name = Path(path).name
    for suffix in PROMPT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def resolve_plan(
    video_path: str, width: int, height: int, frame_count: int, override: str | None, default_prompt: str
) -> PromptPlan:
    """An explicit prompt wins; then the video's prompt file; then the default text."""
    if override:
        return PromptPlan(text_plan(override).queries, (), "run config")
    path = prompt_file_for(video_path)
    if path is None:
        return PromptPlan(text_plan(default_prompt).queries, (), "default")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PROMPT_FILE_BYTES + 1)  # never more than the limit
        if len(data) > MAX_PROMPT_FILE_BYTES:
            raise PromptFileError(f"{path}: larger than {MAX_PROMPT_FILE_BYTES} bytes; not a prompt file")
        text = data.decode()
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptFileError(f"{path}: cannot read ({exc})") from None
    return parse_prompt_file(text, str(path), width, height, frame_count)
