using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace BatchCore.Tests.Hosts;

/// <summary>One request the fake daemon received: the path without the API version prefix, the raw query, the body.</summary>
internal sealed record FakeDockerRequest(string Method, string Path, string Query, string Body)
{
    public bool Is(string method, string pathPrefix) =>
        Method == method && Path.StartsWith(pathPrefix, StringComparison.Ordinal);

    public override string ToString() => Method + " " + Path + (Query.Length == 0 ? "" : "?" + Query);
}

/// <summary>What the fake daemon does with one request instead of answering it as a daemon would.</summary>
internal abstract record FakeDockerReply
{
    /// <summary>Answers with this status and JSON body.</summary>
    public sealed record Respond(int Status, string Body = "") : FakeDockerReply;

    /// <summary>Never answers (until the fake is disposed): a hung daemon.</summary>
    public sealed record Hang : FakeDockerReply;

    /// <summary>Sends the status line, the headers and <paramref name="Chunk"/> of a streamed body, then never goes on.</summary>
    public sealed record HangMidStream(string Chunk) : FakeDockerReply;

    /// <summary>Closes the connection without an answer.</summary>
    public sealed record Drop : FakeDockerReply;

    /// <summary>Does what it would have done, then closes the connection without an answer (a create that timed out).</summary>
    public sealed record ActThenDrop : FakeDockerReply;

    /// <summary>Does what it would have done, then never answers (a create the daemon finished but never confirmed).</summary>
    public sealed record ActThenHang : FakeDockerReply;
}

/// <summary>
/// A fake Docker Engine API on a unix socket, for the driver's failure paths without a dockerd: it keeps images and
/// containers in memory and answers the requests the driver makes as a daemon would, unless <see cref="Intercept"/>
/// says otherwise for a request (fail it, hang, drop the connection). A container runs from its start until it is
/// stopped, killed or <see cref="Exit"/> is called; what it writes (<see cref="Log"/>) is stored with its stamp and
/// served by the logs endpoint as a daemon serves it (multiplexed frames, chunked; <c>follow</c>, <c>since</c> in whole
/// or fractional seconds, inclusive; <c>timestamps</c>). One request per connection (every answer closes it);
/// <see cref="DropConnections"/> drops the open ones, as a daemon restart does.
/// </summary>
internal sealed class FakeDockerDaemon : IAsyncDisposable
{
    private readonly string _directory;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Socket, byte> _connections = new();
    private readonly ConcurrentDictionary<string, Container> _containers = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<FakeDockerRequest> _requests = new();
    private readonly List<(Func<FakeDockerRequest, bool> Match, TaskCompletionSource<FakeDockerRequest> Seen)> _waiters = [];
    private readonly Lock _gate = new();
    private readonly Task _accepting;
    private int _nextId;

    public FakeDockerDaemon()
    {
        // Short: unix socket paths are limited to 108 bytes.
        _directory = Directory.CreateTempSubdirectory("bcfd-").FullName;
        var path = Path.Combine(_directory, "docker.sock");
        Endpoint = "unix://" + path;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(path));
        _listener.Listen(64);
        _accepting = Task.Run(AcceptAsync);
    }

    /// <summary>The endpoint to give the driver.</summary>
    public string Endpoint { get; }

    /// <summary>Images the daemon does not have (inspect answers 404; a pull adds them).</summary>
    public ConcurrentDictionary<string, byte> MissingImages { get; } = new(StringComparer.Ordinal);

    /// <summary>Decides a request before the daemon's own behaviour: null lets the daemon answer it. Runs on any thread.</summary>
    public Func<FakeDockerRequest, FakeDockerReply?>? Intercept { get; set; }

    /// <summary>Every request received so far, in order.</summary>
    public IReadOnlyList<FakeDockerRequest> Requests => [.. _requests];

    /// <summary>The ids of the containers that exist (created and not removed).</summary>
    public IReadOnlyList<string> ContainerIds => [.. _containers.Keys];

    /// <summary>Completes with the first request (received already or later) that matches.</summary>
    public Task<FakeDockerRequest> WaitForRequestAsync(Func<FakeDockerRequest, bool> match)
    {
        lock (_gate)
        {
            foreach (var request in _requests)
            {
                if (match(request))
                {
                    return Task.FromResult(request);
                }
            }

            var seen = new TaskCompletionSource<FakeDockerRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((match, seen));
            return seen.Task;
        }
    }

    /// <summary>Completes when the container has been created (returns its id).</summary>
    public async Task<string> WaitCreatedAsync()
    {
        await WaitForRequestAsync(r => r.Is("POST", "/containers/create"));
        return await _created.Task;
    }

    private readonly TaskCompletionSource<string> _created = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the container has been removed.</summary>
    public Task WaitRemovedAsync(string id) => _removed.GetOrAdd(id, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    private readonly ConcurrentDictionary<string, TaskCompletionSource> _removed = new(StringComparer.Ordinal);

    /// <summary>
    /// Adds a container as a previous engine (or someone else) would have left it: created, running, or exited with
    /// <paramref name="exitCode"/>.
    /// </summary>
    public string AddContainer(IReadOnlyDictionary<string, string> labels, bool running, int? exitCode = null)
    {
        var container = NewContainer(labels);
        if (running)
        {
            container.Status = "running";
        }

        if (exitCode is { } code)
        {
            container.Exit(code);
        }

        return container.Id;
    }

    /// <summary>The container's main process exits with <paramref name="code"/>.</summary>
    public void Exit(string id, int code)
    {
        if (_containers.TryGetValue(id, out var container))
        {
            container.Exit(code);
        }
    }

    /// <summary>The container writes <paramref name="text"/> (one log message; a line ends with "\n"), stamped <paramref name="at"/>.</summary>
    public void Log(string id, string text, DateTimeOffset at, bool stderr = false)
    {
        var container = _containers[id];
        lock (container.Gate)
        {
            container.Logs.Add(new LogMessage(stderr ? (byte)2 : (byte)1, (at - DateTimeOffset.UnixEpoch).Ticks * 100, text));
        }

        container.Pulse();
    }

    /// <summary>Closes every open connection without an answer or the end of its stream, as a daemon restart does.</summary>
    public void DropConnections()
    {
        foreach (var (connection, _) in _connections)
        {
            try
            {
                connection.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // closed meanwhile
            }

            connection.Dispose();
        }
    }

    /// <summary>The container is removed from outside the engine (<c>docker rm -f</c>): a wait on it ends with 137.</summary>
    public void Remove(string id)
    {
        if (_containers.TryRemove(id, out var container))
        {
            container.Exit(137);
            _removed.GetOrAdd(id, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }

    /// <summary>The labels of a container that exists, else null.</summary>
    public IReadOnlyDictionary<string, string>? LabelsOf(string id) =>
        _containers.TryGetValue(id, out var container) ? new Dictionary<string, string>(container.Labels, StringComparer.Ordinal) : null;

    /// <summary>The container id a <c>/containers/{id}/...</c> request names.</summary>
    public static string ContainerIdOf(FakeDockerRequest request) => request.Path.Split('/')[2];

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Dispose();
        foreach (var (connection, _) in _connections)
        {
            connection.Dispose();
        }

        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stopping.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _listener.AcceptAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _connections.TryAdd(connection, 0);
            _ = Task.Run(() => ServeAsync(connection));
        }
    }

    private async Task ServeAsync(Socket connection)
    {
        try
        {
            var request = await ReadRequestAsync(connection);
            if (request is null)
            {
                return;
            }

            Record(request);
            var reply = Intercept?.Invoke(request);
            switch (reply)
            {
                case FakeDockerReply.Hang:
                    await Task.Delay(Timeout.Infinite, _stopping.Token);
                    return;
                case FakeDockerReply.HangMidStream stream:
                    await SendAsync(connection, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + stream.Chunk);
                    await Task.Delay(Timeout.Infinite, _stopping.Token);
                    return;
                case FakeDockerReply.Drop:
                    return;
                case FakeDockerReply.ActThenDrop:
                    await HandleAsync(request);
                    return;
                case FakeDockerReply.ActThenHang:
                    await HandleAsync(request);
                    await Task.Delay(Timeout.Infinite, _stopping.Token);
                    return;
                case FakeDockerReply.Respond respond:
                    await RespondAsync(connection, respond.Status, respond.Body);
                    return;
                default:
                    if (request.Method == "GET" && request.Path.EndsWith("/logs", StringComparison.Ordinal)
                        && _containers.TryGetValue(ContainerIdOf(request), out var followed))
                    {
                        await StreamLogsAsync(connection, followed, request.Query);
                        return;
                    }

                    var (status, body) = await HandleAsync(request);
                    await RespondAsync(connection, status, body);
                    return;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
        {
            // the fake is going away, or the driver gave up on the request
        }
        finally
        {
            _connections.TryRemove(connection, out _);
            connection.Dispose();
        }
    }

    private void Record(FakeDockerRequest request)
    {
        List<TaskCompletionSource<FakeDockerRequest>>? matched = null;
        lock (_gate)
        {
            _requests.Enqueue(request);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(request))
                {
                    (matched ??= []).Add(_waiters[i].Seen);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var seen in matched ?? [])
        {
            seen.TrySetResult(request);
        }
    }

    /// <summary>What a daemon would answer.</summary>
    private async Task<(int Status, string Body)> HandleAsync(FakeDockerRequest request)
    {
        var path = request.Path;
        if (path == "/_ping")
        {
            return (200, "OK");
        }

        if (path.StartsWith("/images/", StringComparison.Ordinal) && path.EndsWith("/json", StringComparison.Ordinal) && request.Method == "GET")
        {
            var name = Uri.UnescapeDataString(path["/images/".Length..^"/json".Length]);
            return MissingImages.ContainsKey(name) ? (404, Message("No such image: " + name)) : (200, "{\"Id\":\"sha256:0\"}");
        }

        if (request.Is("POST", "/images/create"))
        {
            return (200, "{\"status\":\"Downloaded newer image\"}");
        }

        if (request.Is("POST", "/containers/create"))
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            using (var body = JsonDocument.Parse(request.Body))
            {
                if (body.RootElement.TryGetProperty("Labels", out var given) && given.ValueKind == JsonValueKind.Object)
                {
                    foreach (var label in given.EnumerateObject())
                    {
                        labels[label.Name] = label.Value.GetString() ?? "";
                    }
                }
            }

            var container = NewContainer(labels);
            _created.TrySetResult(container.Id);
            return (201, "{\"Id\":\"" + container.Id + "\",\"Warnings\":[]}");
        }

        if (request.Is("GET", "/containers/json"))
        {
            return (200, List(request.Query));
        }

        if (!path.StartsWith("/containers/", StringComparison.Ordinal))
        {
            return (404, Message("page not found"));
        }

        var rest = path["/containers/".Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var id = slash < 0 ? rest : rest[..slash];
        var action = slash < 0 ? "" : rest[(slash + 1)..];
        if (!_containers.TryGetValue(id, out var c))
        {
            return (404, Message("No such container: " + id));
        }

        switch (request.Method, action)
        {
            case ("DELETE", ""):
                _containers.TryRemove(id, out _);
                c.Exit(137);
                _removed.GetOrAdd(id, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                return (204, "");
            case ("POST", "start"):
                c.Status = "running";
                return (204, "");
            case ("POST", "stop"):
                if (c.Status != "running")
                {
                    return (304, "");
                }

                c.Exit(143);
                return (204, "");
            case ("POST", "kill"):
                if (c.Status != "running")
                {
                    return (409, Message("container " + id + " is not running"));
                }

                c.Exit(137);
                return (204, "");
            case ("POST", "wait"):
                var code = await c.Exited.Task.WaitAsync(_stopping.Token);
                return (200, "{\"StatusCode\":" + code.ToString(CultureInfo.InvariantCulture) + "}");
            case ("GET", "json"):
                return (200, Inspect(c));
            default:
                return (404, Message("page not found"));
        }
    }

    /// <summary>
    /// GET /containers/{id}/logs: the stored messages (stamped at or after <c>since</c>) as multiplexed frames in HTTP
    /// chunks, then, with <c>follow</c>, each new one until the container has exited, then the last chunk.
    /// </summary>
    private async Task StreamLogsAsync(Socket connection, Container c, string query)
    {
        bool follow = false, stdout = false, stderr = false, timestamps = false;
        var since = long.MinValue;
        foreach (var part in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? part : part[..eq];
            var value = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..]);
            var on = value is "1" or "true" or "True";
            switch (name)
            {
                case "follow": follow = on; break;
                case "stdout": stdout = on; break;
                case "stderr": stderr = on; break;
                case "timestamps": timestamps = on; break;
                case "since" when value.Length > 0:
                    var dot = value.IndexOf('.', StringComparison.Ordinal);
                    var seconds = long.Parse(dot < 0 ? value : value[..dot], CultureInfo.InvariantCulture);
                    var nanos = dot < 0 ? 0 : long.Parse(value[(dot + 1)..].PadRight(9, '0')[..9], CultureInfo.InvariantCulture);
                    since = seconds == 0 && nanos == 0 ? long.MinValue : (seconds * 1_000_000_000) + nanos;
                    break;
            }
        }

        await SendAsync(connection, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
        var next = 0;
        while (true)
        {
            LogMessage[] batch;
            Task changed;
            bool exited;
            lock (c.Gate)
            {
                batch = [.. c.Logs.Skip(next)];
                next = c.Logs.Count;
                changed = c.Changed;
                exited = c.Exited.Task.IsCompleted;
            }

            foreach (var m in batch)
            {
                if (m.UnixNanos < since || (m.Stream == 1 ? !stdout : !stderr))
                {
                    continue; // the daemon skips each message stamped before since
                }

                var text = (timestamps ? Stamp(m.UnixNanos) + " " : "") + m.Text;
                var payload = Encoding.UTF8.GetBytes(text);
                var frame = new byte[8 + payload.Length];
                frame[0] = m.Stream;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), (uint)payload.Length);
                payload.CopyTo(frame, 8);
                await SendBytesAsync(connection, Encoding.ASCII.GetBytes(frame.Length.ToString("x", CultureInfo.InvariantCulture) + "\r\n"));
                await SendBytesAsync(connection, [.. frame, (byte)'\r', (byte)'\n']);
            }

            if (!follow || exited)
            {
                break;
            }

            await changed.WaitAsync(_stopping.Token);
        }

        await SendAsync(connection, "0\r\n\r\n");
    }

    /// <summary>A stamp as the daemon writes it (RFC3339NanoFixed, UTC).</summary>
    public static string Stamp(long unixNanos)
    {
        var seconds = Math.DivRem(unixNanos, 1_000_000_000, out var nanos);
        return DateTimeOffset.FromUnixTimeSeconds(seconds).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture)
            + "." + nanos.ToString("D9", CultureInfo.InvariantCulture) + "Z";
    }

    private Container NewContainer(IReadOnlyDictionary<string, string> labels)
    {
        var id = "c" + Interlocked.Increment(ref _nextId).ToString("D63", CultureInfo.InvariantCulture);
        var container = new Container(id, new Dictionary<string, string>(labels, StringComparer.Ordinal));
        _containers[id] = container;
        return container;
    }

    /// <summary>GET /containers/json: the containers that carry every label of the <c>label</c> filter.</summary>
    private string List(string query)
    {
        var wanted = new List<string>();
        foreach (var part in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part.StartsWith("filters=", StringComparison.Ordinal))
            {
                using var filters = JsonDocument.Parse(Uri.UnescapeDataString(part["filters=".Length..]));
                if (filters.RootElement.TryGetProperty("label", out var labels))
                {
                    foreach (var label in labels.EnumerateObject())
                    {
                        wanted.Add(label.Name);
                    }
                }
            }
        }

        var list = new StringBuilder("[");
        foreach (var (_, c) in _containers)
        {
            var matches = true;
            foreach (var label in wanted)
            {
                var eq = label.IndexOf('=', StringComparison.Ordinal);
                matches &= eq < 0 ? c.Labels.ContainsKey(label) : c.Labels.TryGetValue(label[..eq], out var v) && v == label[(eq + 1)..];
            }

            if (matches)
            {
                list.Append(list.Length > 1 ? "," : "").Append("{\"Id\":\"").Append(c.Id).Append("\",\"State\":\"").Append(c.Status)
                    .Append("\",\"Labels\":").Append(JsonSerializer.Serialize(c.Labels)).Append('}');
            }
        }

        return list.Append(']').ToString();
    }

    private static string Inspect(Container c) =>
        "{\"Id\":\"" + c.Id + "\",\"State\":{\"Status\":\"" + c.Status + "\",\"Running\":" + (c.Status == "running" ? "true" : "false")
        + ",\"OOMKilled\":false,\"ExitCode\":" + (c.Exited.Task.IsCompleted ? c.Exited.Task.Result : 0).ToString(CultureInfo.InvariantCulture)
        + "},\"Config\":{\"Labels\":" + JsonSerializer.Serialize(c.Labels) + "}}";

    private static string Message(string message) => "{\"message\":" + JsonSerializer.Serialize(message) + "}";

    private static async Task<FakeDockerRequest?> ReadRequestAsync(Socket connection)
    {
        var data = new List<byte>();
        var buffer = new byte[16 * 1024];
        int headerEnd;
        while ((headerEnd = HeaderEnd(data)) < 0)
        {
            var read = await connection.ReceiveAsync(buffer, SocketFlags.None);
            if (read == 0)
            {
                return null;
            }

            data.AddRange(buffer.AsSpan(0, read));
        }

        // Docker.DotNet ends header lines with Environment.NewLine ("\n" here) and the headers with "\r\n".
        var lines = Encoding.ASCII.GetString(data.GetRange(0, headerEnd).ToArray()).Split('\n');
        var requestLine = lines[0].TrimEnd('\r').Split(' ');
        var length = 0;
        var chunked = false;
        foreach (var line in lines.AsSpan(1))
        {
            var header = line.TrimEnd('\r');
            var colon = header.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue;
            }

            var name = header[..colon].Trim();
            var value = header[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                length = int.Parse(value, CultureInfo.InvariantCulture);
            }
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                chunked = value.Contains("chunked", StringComparison.OrdinalIgnoreCase);
            }
        }

        var body = data.GetRange(headerEnd, data.Count - headerEnd);
        while (chunked ? !EndsChunked(body) : body.Count < length)
        {
            var read = await connection.ReceiveAsync(buffer, SocketFlags.None);
            if (read == 0)
            {
                return null;
            }

            body.AddRange(buffer.AsSpan(0, read));
        }

        var text = chunked ? Unchunk(body) : Encoding.UTF8.GetString(body.GetRange(0, length).ToArray());
        var target = requestLine[1];
        var question = target.IndexOf('?', StringComparison.Ordinal);
        var path = question < 0 ? target : target[..question];
        var query = question < 0 ? "" : target[(question + 1)..];
        if (path.StartsWith("/v1.", StringComparison.Ordinal) && path.IndexOf('/', 1) is > 0 and var versionEnd)
        {
            path = path[versionEnd..];
        }

        return new FakeDockerRequest(requestLine[0], path, query, text);
    }

    /// <summary>The index just past the empty line that ends the headers, or -1.</summary>
    private static int HeaderEnd(List<byte> data)
    {
        for (var i = 0; i < data.Count; i++)
        {
            if (data[i] != '\n')
            {
                continue;
            }

            if (i + 1 < data.Count && data[i + 1] == '\n')
            {
                return i + 2;
            }

            if (i + 2 < data.Count && data[i + 1] == '\r' && data[i + 2] == '\n')
            {
                return i + 3;
            }
        }

        return -1;
    }

    private static bool EndsChunked(List<byte> body)
    {
        var text = Encoding.ASCII.GetString(body.ToArray());
        return text.StartsWith("0\r\n\r\n", StringComparison.Ordinal) || text.Contains("\r\n0\r\n\r\n", StringComparison.Ordinal);
    }

    private static string Unchunk(List<byte> body)
    {
        var text = Encoding.UTF8.GetString(body.ToArray());
        var result = new StringBuilder();
        var at = 0;
        while (true)
        {
            var eol = text.IndexOf("\r\n", at, StringComparison.Ordinal);
            var size = int.Parse(text[at..eol], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (size == 0)
            {
                return result.ToString();
            }

            result.Append(text, eol + 2, size);
            at = eol + 2 + size + 2;
        }
    }

    private static Task RespondAsync(Socket connection, int status, string body)
    {
        var bytes = Encoding.UTF8.GetByteCount(body);
        return SendAsync(connection, "HTTP/1.1 " + status.ToString(CultureInfo.InvariantCulture) + " " + Reason(status) + "\r\n"
            + "Content-Type: application/json\r\nContent-Length: " + bytes.ToString(CultureInfo.InvariantCulture) + "\r\n"
            + "Connection: close\r\n\r\n" + body);
    }

    private static Task SendAsync(Socket connection, string text) => SendBytesAsync(connection, Encoding.UTF8.GetBytes(text));

    private static async Task SendBytesAsync(Socket connection, byte[] bytes)
    {
        var sent = 0;
        while (sent < bytes.Length)
        {
            sent += await connection.SendAsync(bytes.AsMemory(sent), SocketFlags.None);
        }
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        404 => "Not Found",
        409 => "Conflict",
        _ => "Internal Server Error",
    };

    private sealed class Container(string id, Dictionary<string, string> labels)
    {
        public string Id => id;

        public Dictionary<string, string> Labels => labels;

        public volatile string Status = "created";

        public TaskCompletionSource<int> Exited { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Lock Gate { get; } = new();

        /// <summary>What it wrote, in the order it was stored (under <see cref="Gate"/>).</summary>
        public List<LogMessage> Logs { get; } = [];

        /// <summary>Completes at the next message or exit (read under <see cref="Gate"/>).</summary>
        public Task Changed => _changed.Task;

        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Exit(int code)
        {
            lock (Gate)
            {
                if (Exited.TrySetResult(code))
                {
                    Status = "exited";
                }
            }

            Pulse();
        }

        public void Pulse()
        {
            TaskCompletionSource changed;
            lock (Gate)
            {
                changed = _changed;
                _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            changed.TrySetResult();
        }
    }

    private sealed record LogMessage(byte Stream, long UnixNanos, string Text);
}
