using System.Text;
using BatchCore.Hosts.InProcess;
using BatchCore.Logs;

namespace BatchCore.Tests.Hosts.InProcess;

/// <summary>How an in-process handler's <c>Log</c> writes and <c>Logger</c> entries become log events: the cap of every driver.</summary>
public sealed class JobLogWriterTests
{
    private const string Stream = "def/default/job";

    [Fact]
    public void LongLineWithoutNewline_BecomesEventsWithinTheCap_NothingLost()
    {
        var logs = new InMemoryLogStore();
        using (var writer = new JobLogWriter(logs, TimeProvider.System, Stream))
        {
            var chunk = new string('a', 10_000);
            for (var i = 0; i < 100; i++)
            {
                writer.Write(chunk); // 1,000,000 characters, no newline
            }
        }

        var events = Messages(logs);
        Assert.Equal([LogStore.MaxEventBytes, LogStore.MaxEventBytes, LogStore.MaxEventBytes, 213_646], events.Select(e => e.Length));
        Assert.All(events, e => Assert.DoesNotContain(e, c => c != 'a'));
    }

    [Fact]
    public void WriteLine_OfALineOverTheCap_IsCutToo()
    {
        var logs = new InMemoryLogStore();
        using var writer = new JobLogWriter(logs, TimeProvider.System, Stream, maxEventBytes: 8);

        writer.WriteLine("short");
        writer.WriteLine("abcdefghijklmnopqrst");
        writer.WriteLine("");

        Assert.Equal(["short", "abcdefgh", "ijklmnop", "qrst", ""], Messages(logs));
    }

    /// <summary>A TextWriter is written a char at a time: the two halves of a surrogate pair come in separate calls.</summary>
    [Fact]
    public void MultiByteCharacters_WrittenCharByChar_AreNeverCut()
    {
        var logs = new InMemoryLogStore();
        const string text = "ééééé😀😀a€€";
        using (var writer = new JobLogWriter(logs, TimeProvider.System, Stream, maxEventBytes: 7))
        {
            foreach (var c in text)
            {
                writer.Write(c);
            }
        }

        var events = Messages(logs);
        Assert.Equal(["ééé", "éé", "😀", "😀a", "€€"], events);
        Assert.All(events, e => Assert.InRange(Encoding.UTF8.GetByteCount(e), 1, 7));
    }

    [Fact]
    public void Lines_SplitAcrossWrites_CrLfTrimmed_LastPartialLineOnFlush()
    {
        var logs = new InMemoryLogStore();
        using var writer = new JobLogWriter(logs, TimeProvider.System, Stream);

        writer.Write("one\r");
        writer.Write("\ntw");
        writer.WriteLine("o");
        writer.Write("three");
        Assert.Equal(["one", "two"], Messages(logs));

        writer.Flush();
        writer.Flush();
        Assert.Equal(["one", "two", "three"], Messages(logs));
    }

    /// <summary>The ILogger's entry keeps its newlines (one event with its exception) but not its unbounded size.</summary>
    [Fact]
    public void LoggerEntryOverTheCap_BecomesEventsWithinIt_NewlinesKept()
    {
        var logs = new InMemoryLogStore();
        var logger = new JobStreamLogger(logs, TimeProvider.System, Stream, forward: null, "job", 0, maxEventBytes: 9);

        logger.Log(Microsoft.Extensions.Logging.LogLevel.Information, default, "a\nb", null, static (s, _) => s);
        logger.Log(Microsoft.Extensions.Logging.LogLevel.Information, default, "€€€x", null, static (s, _) => s);

        Assert.Equal(["info: a\nb", "info: €", "€€x"], Messages(logs));
    }

    [Fact]
    public void LoggerEntry_ADefaultSizedOneOverTheCap_IsCut()
    {
        var logs = new InMemoryLogStore();
        var logger = new JobStreamLogger(logs, TimeProvider.System, Stream, forward: null, "job", 0);

        logger.Log(Microsoft.Extensions.Logging.LogLevel.Warning, default, new string('a', 1_000_000), null, static (s, _) => s);

        var events = Messages(logs);
        Assert.Equal([LogStore.MaxEventBytes, LogStore.MaxEventBytes, LogStore.MaxEventBytes, 213_652], events.Select(e => e.Length));
        Assert.Equal("warn: " + new string('a', 1_000_000), string.Concat(events));
    }

    private static string[] Messages(InMemoryLogStore logs) =>
        logs.StreamExists(Stream) ? logs.GetLogEvents(Stream).Events.Select(e => e.Message).ToArray() : [];
}
