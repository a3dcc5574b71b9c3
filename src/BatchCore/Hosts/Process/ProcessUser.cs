using System.Globalization;

namespace BatchCore.Hosts.Process;

/// <summary>
/// The user a process attempt runs as: AWS's <c>containerProperties.user</c> resolved the way Docker resolves
/// <c>--user</c> (ECS passes it on): <c>name</c>, <c>uid</c>, <c>name:group</c> or <c>uid:gid</c>; a name must exist in
/// the passwd file; without a group, the user's primary group (a uid with no passwd entry gets group 0, as in Docker);
/// <c>HOME</c> is the passwd entry's home directory (<c>/</c> without one). A malformed entry is an error, never root.
/// </summary>
internal readonly record struct ProcessUser(uint Uid, uint Gid, string? Name, string? Home)
{
    /// <summary>Resolves <paramref name="user"/> against the passwd and group files; null with the reason when it cannot.</summary>
    public static ProcessUser? Resolve(string user, out string? error, string passwdPath = "/etc/passwd", string groupPath = "/etc/group")
    {
        error = null;
        var colon = user.IndexOf(':', StringComparison.Ordinal);
        var userPart = colon < 0 ? user : user[..colon];
        var groupPart = colon < 0 ? null : user[(colon + 1)..];
        if (userPart.Length == 0 || groupPart is { Length: 0 })
        {
            error = $"invalid user {user}: expected name, uid, name:group or uid:gid";
            return null;
        }

        var entry = Find(passwdPath, userPart, idField: 2, minFields: 4);
        uint uid, gid;
        if (entry is not null)
        {
            if (!TryParseId(entry[2], out uid) || !TryParseId(entry[3], out gid))
            {
                error = $"invalid passwd entry for user {userPart}";
                return null; // never a default of 0: that is root
            }
        }
        else if (TryParseId(userPart, out uid))
        {
            gid = 0;
        }
        else
        {
            error = $"unable to find user {userPart}: no matching entries in passwd file";
            return null;
        }

        if (groupPart is not null)
        {
            var group = Find(groupPath, groupPart, idField: 2, minFields: 3);
            if (group is not null)
            {
                if (!TryParseId(group[2], out gid))
                {
                    error = $"invalid group entry for group {groupPart}";
                    return null;
                }
            }
            else if (!TryParseId(groupPart, out gid))
            {
                error = $"unable to find group {groupPart}: no matching entries in group file";
                return null;
            }
        }

        return new ProcessUser(uid, gid, entry?[0], entry is { Length: > 5 } ? entry[5] : null);
    }

    /// <summary>The line of <paramref name="path"/> whose name, or else whose id, is <paramref name="nameOrId"/>, split on ':'.</summary>
    private static string[]? Find(string path, string nameOrId, int idField, int minFields)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        string[]? byId = null;
        foreach (var line in File.ReadLines(path))
        {
            var fields = line.Split(':');
            if (fields.Length < minFields)
            {
                continue;
            }

            if (fields[0] == nameOrId)
            {
                return fields;
            }

            if (byId is null && fields[idField] == nameOrId)
            {
                byId = fields;
            }
        }

        return byId;
    }

    private static bool TryParseId(string s, out uint id) => uint.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out id);
}
