using System.Diagnostics;
using System.Globalization;
using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Cli.Publish;

/// <summary>
/// <c>kawa publish --url URL --subject S [--window N] [--create-stream NAME] FILE|-</c>: publishes each non-empty line
/// to a JetStream subject and waits for every PubAck, keeping at most <c>window</c> publishes unacknowledged
/// (pipelined, bounded).
/// </summary>
/// <remarks>
/// Exit codes: 0 when every line was acked by the stream; 4 when the server cannot be reached, JetStream is not
/// enabled, or no stream captures the subject (no responders); 1 when the stream refused a message; 3 when the
/// input file does not exist. On failure, lines already acked stay in the stream (the count is printed), the rest
/// were not stored or not confirmed: publishing the file again may duplicate the confirmed part.
/// </remarks>
internal static class PublishCommand
{
    /// <summary>Runs the command.</summary>
    public static async Task<int> RunAsync(string url, string subject, string input, int window, string? createStream, TextWriter stdout, TextWriter stderr, ILoggerFactory loggerFactory)
    {
        if (window < 1)
        {
            stderr.WriteLine($"kawa publish: --window must be at least 1 (got {window}).");
            return ExitCodes.Usage;
        }

        Stream source;
        try
        {
            source = input == "-" ? Console.OpenStandardInput() : File.OpenRead(input);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"kawa publish: cannot open '{input}': {ex.Message}");
            return ExitCodes.ConfigInvalid;
        }

        using var reader = new StreamReader(source, Encoding.UTF8);
        var connection = new NatsConnection(new NatsConnectionOptions { Servers = [url], Name = "kawa-publish", MaxReconnectAttempts = 0 }, loggerFactory);
        await using var connectionScope = connection.ConfigureAwait(false);
        try
        {
            await connection.ConnectAsync().ConfigureAwait(false);
        }
        catch (NatsException ex)
        {
            stderr.WriteLine($"kawa publish: cannot connect to {url}: {ex.Message}. Is nats-server running there (with JetStream: nats-server -js)?");
            return ExitCodes.ConnectionFailure;
        }

        var js = new JetStreamContext(connection);
        if (createStream is not null)
        {
            var code = await EnsureStreamAsync(js, createStream, subject, stderr).ConfigureAwait(false);
            if (code != ExitCodes.Ok)
            {
                return code;
            }
        }

        var started = Stopwatch.GetTimestamp();
        var slots = new SemaphoreSlim(window, window);
        using var failed = new CancellationTokenSource();
        Exception? failure = null;
        long sent = 0, acked = 0;
        string? stream = null;
        ulong lastSequence = 0;
        var lastDraw = started;
        var terminal = !Console.IsErrorRedirected;
        try
        {
            while (await reader.ReadLineAsync(failed.Token).ConfigureAwait(false) is { } line)
            {
                if (line.Length == 0)
                {
                    continue;
                }

                await slots.WaitAsync(failed.Token).ConfigureAwait(false);
                sent++;
                _ = PublishOneAsync(Encoding.UTF8.GetBytes(line));
                if (terminal && Stopwatch.GetElapsedTime(lastDraw).TotalSeconds >= 1)
                {
                    lastDraw = Stopwatch.GetTimestamp();
                    stderr.Write($"\r\u001b[Kpublished {Interlocked.Read(ref acked):N0} ({Rate(Interlocked.Read(ref acked), started):N0} msg/s)");
                }
            }
        }
        catch (OperationCanceledException) when (failed.IsCancellationRequested)
        {
            // A publish failed; reported below.
        }

        // Wait for every outstanding PubAck: all slots free again.
        for (var i = 0; i < window; i++)
        {
            await slots.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        }

        if (terminal)
        {
            stderr.Write("\r\u001b[K");
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        if (failure is not null)
        {
            var (message, exit) = failure switch
            {
                NatsNoRespondersException => ($"no JetStream stream captures subject '{subject}' (no responders). Create one first, e.g. `kawa publish --create-stream NAME ...` or `nats stream add NAME --subjects '{subject}'`.", ExitCodes.ConnectionFailure),
                NatsConnectionException or NatsAuthenticationException => ($"lost the connection to {url}: {failure.Message}", ExitCodes.ConnectionFailure),
                NatsTimeoutException => ($"no PubAck in time: {failure.Message} Is the stream's server overloaded or its storage full?", ExitCodes.ConnectionFailure),
                _ => ($"the stream refused a message: {failure.GetType().Name}: {failure.Message}", ExitCodes.RuntimeFailure),
            };
            stderr.WriteLine($"kawa publish: {message}");
            stderr.WriteLine($"  {acked:N0} of {sent:N0} line(s) sent were acked by the stream before the failure; the rest were not stored or not confirmed.");
            return exit;
        }

        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"published {acked:N0} message(s) to '{subject}' (stream {stream ?? "-"}, last sequence {lastSequence}) in {seconds:F2} s ({Rate(acked, started):N0} msg/s)"));
        return ExitCodes.Ok;

        async Task PublishOneAsync(byte[] payload)
        {
            try
            {
                var ack = await js.PublishAsync(subject, payload, cancellationToken: failed.Token).ConfigureAwait(false);
                lock (slots)
                {
                    acked++;
                    stream ??= ack.Stream;
                    lastSequence = Math.Max(lastSequence, ack.Seq);
                }
            }
            catch (Exception ex)
            {
                if (ex is not OperationCanceledException)
                {
                    Interlocked.CompareExchange(ref failure, ex, null);
                }

                await failed.CancelAsync().ConfigureAwait(false);
            }
            finally
            {
                slots.Release();
            }
        }
    }

    private static async Task<int> EnsureStreamAsync(JetStreamContext js, string name, string subject, TextWriter stderr)
    {
        try
        {
            await js.GetStreamAsync(name).ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        catch (JetStreamApiException ex) when (ex.ErrorCode == JetStreamContext.StreamNotFound)
        {
            // Create it below.
        }
        catch (NatsNoRespondersException)
        {
            stderr.WriteLine("kawa publish: the server does not answer JetStream requests: start it with JetStream enabled (nats-server -js).");
            return ExitCodes.ConnectionFailure;
        }

        try
        {
            await js.CreateStreamAsync(new StreamConfig { Name = name, Subjects = [subject], Storage = StorageType.File }).ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        catch (JetStreamApiException ex)
        {
            stderr.WriteLine($"kawa publish: cannot create stream '{name}' for subject '{subject}': {ex.Message}");
            return ExitCodes.RuntimeFailure;
        }
    }

    private static double Rate(long count, long started) => count / Math.Max(Stopwatch.GetElapsedTime(started).TotalSeconds, 1e-3);
}
