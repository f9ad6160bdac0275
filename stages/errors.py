"""The one exception the edges turn into a one-line message and exit code 2."""


class InputError(Exception):
    """Bad input or bad parameters: the message names the file (or parameter) and the problem."""

    def __init__(self, source: str, problem: str):
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem
