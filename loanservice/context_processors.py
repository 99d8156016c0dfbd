from . import roles


def portal(request):
    user = request.user
    role_set = roles.user_roles(user)
    unread = 0
    if user.is_authenticated:
        unread = user.notifications.filter(read_at__isnull=True).count()
    return {
        "user_roles": role_set,
        "is_staff_member": bool(role_set & set(roles.STAFF_ROLES)),
        "is_applicant": roles.APPLICANT in role_set,
        "unread_notifications": unread,
    }
