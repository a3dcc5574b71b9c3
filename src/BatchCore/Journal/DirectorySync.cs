using System.Runtime.InteropServices;

namespace BatchCore.Journal;

/// <summary>
/// fsync of a directory: makes a rename or a deletion in it durable (POSIX leaves directory entries in the page cache
/// until then). Best effort: a directory that cannot be opened is left to the file system's own ordering.
/// </summary>
internal static partial class DirectorySync
{
    public static void Fsync(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return; // NTFS journals renames itself; a directory cannot be fsynced there
        }

        var fd = Open(directory, 0); // O_RDONLY
        if (fd < 0)
        {
            return;
        }

        try
        {
            _ = FsyncFd(fd);
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncFd(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
