"""Entry point loaded by Kamailio's app_python3: mod_init() returns the router object."""
import KSR

from kemi.router import Router


def mod_init() -> Router:
    """Called once before Kamailio forks its workers: the tariffs are read here, once, for
    every worker to share; the connection is closed before the fork."""
    router = Router()
    book = router.rt.preload_tariffs()
    if book is None:
        KSR.warn("[-] TARIFFS: not preloaded (Redis unreachable); each worker reads a "
                 "tariff on its first call\n")
    else:
        KSR.info(f"[-] TARIFFS: {len(book.tables)} tariffs, "
                 f"{sum(len(t) for t in book.tables.values())} prefixes preloaded for the "
                 "workers\n")
    return router
