"""A handler that does nothing, for measuring hookwise's own cost."""

from hookwise import Event


def handle(event: Event) -> None:
    del event


async def handle_async(event: Event) -> None:
    del event
