"""The one error type users can cause, with a one-line message that says what to do."""


class CowdemoError(Exception):
    """A problem caused by input or environment (bad file, missing weights, wrong format).

    The message is one line that says what was wrong and what to do. Pages show it with
    ``st.error``; the CLI prints it and exits 2. Never raised for programming errors.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
