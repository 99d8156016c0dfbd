from . import roles


def portal(request):
    user = request.user
    unread = 0
    if user.is_authenticated:
        unread = user.notifications.filter(read_at__isnull=True).count()
    return {
        "can": roles.PermissionLookup(user),
        "unread_notifications": unread,
    }
