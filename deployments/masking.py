"""Replacing secret values in command output before it is stored or logged."""

from services.validation import escape_env_value

MASK = "********"


class Masker:
    """Replace every known secret value, in the forms it can appear in output, with the mask."""

    def __init__(self, secrets: list[str]):
        variants: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            variants.add(secret)
            # Compose prints values as they stand in our generated files.
            variants.add(escape_env_value(secret))
            # Output is stored line by line, so each line of a multi-line
            # secret (a PEM key) has to be recognised on its own.
            variants.update(line for line in secret.splitlines() if line.strip())
        # Longest first, so a secret that contains another is replaced whole.
        self._variants = sorted(variants, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for variant in self._variants:
            if variant in text:
                text = text.replace(variant, MASK)
        return text
