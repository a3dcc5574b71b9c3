using System.Runtime.InteropServices;

namespace BatchCore.Hosts.Process;

/// <summary>The few libc calls the process driver needs that .NET does not expose (signals to arbitrary pids).</summary>
internal static partial class NativeMethods
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    /// <summary>kill(2). Negative <paramref name="pid"/> signals a process group. Errors (ESRCH) are ignored by callers.</summary>
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    /// <summary>gettid(2): the calling thread's kernel id (equals the process id on the main thread).</summary>
    [LibraryImport("libc", EntryPoint = "gettid")]
    public static partial int GetTid();

    /// <summary>geteuid(2).</summary>
    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    /// <summary>getegid(2).</summary>
    [LibraryImport("libc", EntryPoint = "getegid")]
    public static partial uint GetEgid();

    /// <summary>lchown(2): never follows a symbolic link.</summary>
    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Lchown(string path, uint owner, uint group);

    /// <summary>mkdir(2): fails (EEXIST) when anything, a symbolic link included, is at <paramref name="path"/>.</summary>
    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mkdir(string path, uint mode);

    /// <summary>tgkill(2). Signal 0 only checks that thread <paramref name="tid"/> belongs to process <paramref name="tgid"/>.</summary>
    [LibraryImport("libc", EntryPoint = "tgkill", SetLastError = true)]
    public static partial int TgKill(int tgid, int tid, int signal);
}
