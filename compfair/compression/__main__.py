"""Print the registered compression methods as the Markdown table of docs/methods.md.

python -m compfair.compression
"""

from __future__ import annotations

from compfair.compression import load_builtin_methods


def _options(cls: type) -> str:
    props = cls.options_schema.get("properties", {})
    return ", ".join(
        f"`{k}` ({v['default']})" if "default" in v else f"`{k}`" for k, v in props.items()
    )


def main() -> None:
    print("| method | family | level | calibration | what it does | source | options (default) |")
    print("|---|---|---|---|---|---|---|")
    for name, cls in sorted(load_builtin_methods().items(), key=lambda kv: (kv[1].family, kv[0])):
        calib = "yes" if cls.needs_calibration else "no"
        summary = cls.summary.replace("|", "\\|")  # a |w| must not end the cell
        print(
            f"| `{name}` | {cls.family} | {cls.level_kind} | {calib} | {summary} | {cls.paper} "
            f"| {_options(cls) or '-'} |"
        )


if __name__ == "__main__":
    main()
