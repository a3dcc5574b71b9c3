using BatchCore.Hosts.Process;

namespace BatchCore.Tests.Hosts;

/// <summary>containerProperties.user resolved as Docker resolves --user, against given passwd and group files.</summary>
public sealed class ProcessUserTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bc-user-").FullName;
    private readonly string _passwd;
    private readonly string _group;

    public ProcessUserTests()
    {
        _passwd = Path.Combine(_dir, "passwd");
        _group = Path.Combine(_dir, "group");
        File.WriteAllLines(_passwd, ["root:x:0:0:root:/root:/bin/bash", "app:x:1000:1001:App:/home/app:/bin/sh", "broken-line", "short:x:5", "bad:x:nine:1:Bad:/:/bin/sh"]);
        File.WriteAllLines(_group, ["root:x:0:", "staff:x:50:app", "apps:x:1001:", "odd:x:-1:"]);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("app", 1000u, 1001u, "app", "/home/app")]
    [InlineData("1000", 1000u, 1001u, "app", "/home/app")] // a uid with a passwd entry takes the entry's group and home
    [InlineData("2000", 2000u, 0u, null, null)] // no entry: group 0, as Docker
    [InlineData("app:staff", 1000u, 50u, "app", "/home/app")]
    [InlineData("app:77", 1000u, 77u, "app", "/home/app")]
    [InlineData("2000:3000", 2000u, 3000u, null, null)]
    public void Resolves(string user, uint uid, uint gid, string? name, string? home)
    {
        var resolved = ProcessUser.Resolve(user, out var error, _passwd, _group);

        Assert.Null(error);
        Assert.Equal(new ProcessUser(uid, gid, name, home), resolved);
    }

    [Theory]
    [InlineData("ghost", "unable to find user ghost: no matching entries in passwd file")]
    [InlineData("app:ghosts", "unable to find group ghosts: no matching entries in group file")]
    [InlineData("app:", "invalid user app:: expected name, uid, name:group or uid:gid")]
    [InlineData(":50", "invalid user :50: expected name, uid, name:group or uid:gid")]
    [InlineData("bad", "invalid passwd entry for user bad")] // never root by default
    [InlineData("short", "unable to find user short: no matching entries in passwd file")] // too few fields: not an entry
    [InlineData("app:odd", "invalid group entry for group odd")]
    public void Refuses(string user, string expected)
    {
        Assert.Null(ProcessUser.Resolve(user, out var error, _passwd, _group));
        Assert.Equal(expected, error);
    }
}
