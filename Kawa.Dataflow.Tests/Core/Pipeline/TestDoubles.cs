using System.Collections.Concurrent;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

/// <summary>A source token that records its final outcome (the base class already throws on a second one).</summary>
public sealed class RecordingToken(int id) : AckToken
{
    private int _completions;

    public int Id { get; } = id;

    public int Completions => Volatile.Read(ref _completions);

    protected override void OnCompleted(AckOutcome outcome) => Interlocked.Increment(ref _completions);
}

/// <summary>
/// A source over a fixed list (then end of stream, or, when <c>endless</c>, waiting for cancellation), recording every
/// token it handed out and whether a receive is pending.
/// </summary>
public sealed class TestSource<T> : ISource<T>
{
    private readonly IReadOnlyList<Message<T>> _messages;
    private readonly bool _endless;
    private readonly ConcurrentQueue<RecordingToken> _tokens = new();
    private readonly TaskCompletionSource _receiveCancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _next;
    private int _pending;

    public TestSource(IReadOnlyList<Message<T>> messages, bool endless = false)
    {
        _messages = messages;
        _endless = endless;
    }

    public int Received => Volatile.Read(ref _next);

    public bool ReceivePending => Volatile.Read(ref _pending) != 0;

    public IReadOnlyCollection<RecordingToken> Tokens => _tokens;

    /// <summary>Completes when a receive was cancelled by the pipeline (it stopped reading).</summary>
    public Task ReceiveCancelled => _receiveCancelled.Task;

    /// <summary>Called after each message is handed out, with how many were handed out.</summary>
    public Action<int>? OnReceived { get; set; }

    public async ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _pending, 1) != 0)
        {
            throw new InvalidOperationException("ReceiveAsync called concurrently.");
        }

        try
        {
            using var _ = cancellationToken.Register(() => _receiveCancelled.TrySetResult());
            cancellationToken.ThrowIfCancellationRequested();
            var index = _next;
            if (index >= _messages.Count)
            {
                if (_endless)
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }

                return Delivery<T>.EndOfStream;
            }

            var token = new RecordingToken(index);
            _tokens.Enqueue(token);
            Volatile.Write(ref _next, index + 1);
            OnReceived?.Invoke(index + 1);
            return new Delivery<T>(_messages[index], token);
        }
        finally
        {
            Volatile.Write(ref _pending, 0);
        }
    }
}

/// <summary>Writes to an in-memory list, then acks (a correct destination).</summary>
public sealed class RecordingDestination<T> : IDestination<T>
{
    private readonly ConcurrentQueue<Message<T>> _written = new();
    private int _flushes;

    public IReadOnlyCollection<Message<T>> Written => _written;

    public int Flushes => Volatile.Read(ref _flushes);

    public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
    {
        foreach (var message in messages)
        {
            _written.Enqueue(message);
        }

        ack.Ack();
        return default;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _flushes);
        return default;
    }
}

public static class TestMessages
{
    public static Message<int>[] Ints(int count, Func<int, string?>? key = null)
        => Enumerable.Range(0, count).Select(i => new Message<int>(i, key?.Invoke(i))).ToArray();

    public static TimeSpan Generous => TimeSpan.FromSeconds(30);
}

/// <summary>
/// The dead-letter destination of the randomized ack-accounting runs: by <c>behaviour</c> it records the originals and
/// acks (0), negatively acks (1) or throws <paramref name="fault"/> (2), after a yield so the write is asynchronous.
/// </summary>
internal static class RandomDeadLetters
{
    public static async ValueTask WriteAsync<T>(int behaviour, System.Collections.Concurrent.ConcurrentDictionary<T, byte> written, AckToken ack, Messages<DeadLetter<T>> records, Func<Exception> fault)
        where T : notnull
    {
        await Task.Yield();
        switch (behaviour)
        {
            case 0:
                foreach (var record in records)
                {
                    written[record.Value.Original.Value] = 0;
                }

                ack.Ack();
                break;
            case 1:
                ack.Nack();
                break;
            default:
                throw fault();
        }
    }
}

/// <summary>
/// Drives the seeded runs of a randomized accounting test: each seed's violations, prefixed with the seed, and every fact
/// any run recorded (which paths the runs went through). Stops early once more than 20 violations are in.
/// </summary>
internal static class SeededRuns
{
    public static async Task<(List<string> Failures, HashSet<string> Facts)> RunAsync(int firstSeed, int runs, Func<int, Task<(List<string> Violations, IEnumerable<string> Facts)>> run)
    {
        var failures = new List<string>();
        var facts = new HashSet<string>();
        for (var seed = firstSeed; seed < firstSeed + runs && failures.Count <= 20; seed++)
        {
            var (violations, seen) = await run(seed);
            failures.AddRange(violations.Select(v => $"seed {seed}: {v}"));
            facts.UnionWith(seen);
        }

        return (failures, facts);
    }
}

/// <summary>
/// The handler of the randomized accounting runs: message <c>id</c> yields first when even, fails its first
/// <c>failingAttempts</c> attempts (recording in <c>gaveUp</c> why it may be acked without output), then fans out into
/// <c>fanOut</c> outputs <c>(id, part)</c> (none: a filter).
/// </summary>
internal static class RandomFanOut
{
    public static async ValueTask<Messages<(int Id, int Part)>> HandleAsync(
        Message<int> message, int attempt, int failingAttempts, int fanOut, ConcurrentDictionary<int, byte> gaveUp, Func<string, Exception> fault, CancellationToken cancellationToken)
    {
        var id = message.Value;
        if ((id & 1) == 0)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
        }

        if (attempt <= failingAttempts)
        {
            // Recorded before throwing: if the policy gives up, this is why the message may be acked without output.
            gaveUp[id] = 0;
            throw fault($"handler fault on {id}, attempt {attempt}");
        }

        gaveUp.TryRemove(id, out _);
        var outputs = new Message<(int, int)>[fanOut];
        for (var part = 0; part < outputs.Length; part++)
        {
            outputs[part] = message.With((id, part));
        }

        return outputs.Length == 1 ? new Messages<(int, int)>(outputs[0]) : new Messages<(int, int)>(outputs);
    }
}
