"""A griffe extension for the docs build: the project's `Example:` docstring sections read as examples.

The docstrings follow Keras: an `Example:` section (singular) whose `>>>` lines sit at the title's
indent. griffe's Google parser knows only `Examples:` with indented contents, and would render those
lines as Markdown prose. Loaded by mkdocstrings through `extensions:` in mkdocs.yml; it changes only
the rendered pages, not the docstrings.
"""

import re

import griffe

EXAMPLE_TITLE = re.compile(r"^(\s*)Examples?:\s*$")
SECTION_TITLE = re.compile(r"^(\s*)[A-Z][A-Za-z ]*:\s*$")


def with_example_sections(docstring):
    """`docstring` with each `Example:` section titled `Examples:` and its contents indented.

    Args:
        docstring: str. A docstring as griffe holds it (common indentation removed).

    Returns:
        str.

    Example:
    >>> with_example_sections("Sum.\\n\\nExample:\\n>>> 1 + 1\\n2")
    'Sum.\\n\\nExamples:\\n    >>> 1 + 1\\n    2'
    """
    lines = docstring.split("\n")
    title_indent = None
    for index, line in enumerate(lines):
        title = EXAMPLE_TITLE.match(line)
        other = SECTION_TITLE.match(line)
        if title:
            title_indent = len(title.group(1))
            lines[index] = f"{title.group(1)}Examples:"
        elif other and title_indent is not None and len(other.group(1)) <= title_indent:
            title_indent = None
        elif title_indent is not None and line.strip():
            lines[index] = "    " + line
    return "\n".join(lines)


class ExampleSections(griffe.Extension):
    """Applies `with_example_sections` to every docstring griffe loads."""

    def on_object(self, *, obj, **kwargs):
        """Called by griffe for every object once its package is loaded."""
        if obj.docstring is not None:
            obj.docstring.value = with_example_sections(obj.docstring.value)
