"""Private file storage: documents and contracts live outside any served path and are streamed by
views that check who is asking."""

import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage


class PrivateStorage(FileSystemStorage):
    """FileSystemStorage rooted at settings.PRIVATE_STORAGE_ROOT, read at use time (not at import), so a
    deployment or a test that changes the setting is honoured; no base_url: files are never served by path."""

    @property
    def base_location(self):
        return str(settings.PRIVATE_STORAGE_ROOT)

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    @property
    def base_url(self):
        return None


_private = PrivateStorage()


def private_storage() -> FileSystemStorage:
    return _private
