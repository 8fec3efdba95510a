using System.Collections.Concurrent;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

/// <summary>
/// The ack-accounting check through a batching sink: seeded runs on the thread pool with random fan-out, handler
/// failures, flush failures (retried, then raised, discarded, negatively acked or dead-lettered), acks deferred to a
/// commit, and cancellation at random points. Every source token throws on a second final outcome (the
/// <see cref="AckToken"/> base) and checks, at the moment it is acked, that everything the ack vouches for is already
/// durable; after the run, every message read must have exactly one final outcome.
/// </summary>
public class BatchingAckAccountingTests
{
    private const string NotDurable = "not durable when acked";

    [Test]
    public async Task RunAsync_BatchingSinkRandomFlushFailuresAndCancellation_EveryMessageSettledOnceAndAckedOnlyWhenDurable()
    {
        var (failures, seen) = await SeededRuns.RunAsync(1, 1000, async seed =>
        {
            var run = new AccountingRun(seed, BrokenFlusher.None);
            return (await run.RunAndCheckAsync(), run.Facts);
        });

        Assert.That(failures, Is.Empty);

        // The runs really went through every path the check is about.
        Assert.That(seen, Is.SupersetOf(new[]
        {
            "completed", "cancelled-drained", "drain-timed-out", "fatal", "Ack", "Nack", "Terminate", "fan-out",
            "flush-failed", "flush-retried", "discarded", "dead-lettered", "deferred",
            "staged", "ran-to-completion",
        }));
    }

    [TestCase(BrokenFlusher.AcksBeforeFlushCompletes)]
    [TestCase(BrokenFlusher.DropsBatch)]
    public async Task Checker_BrokenFlusher_ReportsAckOfDataNotDurable(BrokenFlusher broken)
    {
        var caught = 0;
        for (var seed = 1; seed <= 50; seed++)
        {
            var violations = await new AccountingRun(seed, broken).RunAndCheckAsync();
            if (violations.Exists(v => v.Contains(NotDurable, StringComparison.Ordinal)))
            {
                caught++;
            }
        }

        TestContext.Out.WriteLine($"{broken}: caught in {caught} of 50 runs");

        // Only runs in which no batch was ever flushed (every message fanned out to nothing, or cancelled at once) can
        // hide the broken flusher.
        Assert.That(caught, Is.GreaterThan(30));
    }

    public enum BrokenFlusher
    {
        None,

        /// <summary>Takes over the batch's acks, acks, and only then writes (a write that may still fail).</summary>
        AcksBeforeFlushCompletes,

        /// <summary>Returns normally for every other batch without writing it.</summary>
        DropsBatch,
    }

    private sealed class InjectedFault(string message) : Exception(message);

    /// <summary>A source token that counts its final outcomes and checks durability at the moment of an ack.</summary>
    private sealed class CheckedToken(AccountingRun run, int id) : AckToken
    {
        private int _completions;

        public int Id => id;

        public int Completions => Volatile.Read(ref _completions);

        protected override void OnCompleted(AckOutcome outcome)
        {
            Interlocked.Increment(ref _completions);
            if (outcome.Kind == AckKind.Ack)
            {
                run.CheckAckJustified(id);
            }
        }
    }

    /// <summary>A finite source (or, when cancelled runs are wanted, one that then waits for cancellation).</summary>
    private sealed class Source(AccountingRun run, int count, bool endless, Action<int> onReceived) : ISource<int>
    {
        private readonly ConcurrentQueue<CheckedToken> _tokens = new();
        private int _next;

        public IReadOnlyCollection<CheckedToken> Tokens => _tokens;

        public int Received => Volatile.Read(ref _next);

        public async ValueTask<Delivery<int>> ReceiveAsync(CancellationToken cancellationToken = default)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_next >= count)
            {
                if (endless)
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }

                return Delivery<int>.EndOfStream;
            }

            var id = _next;
            var token = new CheckedToken(run, id);
            _tokens.Enqueue(token);
            Volatile.Write(ref _next, id + 1);
            onReceived(id + 1);
            return new Delivery<int>(new Message<int>(id, id % 3 == 0 ? null : "k" + (id % 5)), token);
        }
    }

    private sealed class AccountingRun
    {
        private readonly Random _rng;
        private readonly BrokenFlusher _broken;
        private readonly int _seed;
        private readonly int _count;
        private readonly int[] _fanOut;
        private readonly int[] _failingAttempts;
        private readonly string _policyName;
        private readonly ErrorPolicy _policy;
        private readonly string _onErrorName;
        private readonly BatchErrorHandler<(int Id, int Part)> _onError;
        private readonly double _flushFaultRate;
        private readonly double _deferRate;
        private readonly int _deadLetterBehaviour;
        private readonly int _cancelAfter;
        private readonly int _cancelAtFlush;
        private readonly bool _stallFlushAfterCancel;
        private readonly object _rngLock = new();

        // What is durable: outputs written by a successful flush (or committed), and dead-letter records.
        private readonly ConcurrentDictionary<(int Id, int Part), byte> _durable = new();
        private readonly ConcurrentDictionary<(int Id, int Part), byte> _flushFailed = new();
        private readonly ConcurrentDictionary<(int Id, int Part), byte> _batchDeadLettered = new();
        private readonly ConcurrentDictionary<int, byte> _handlerDeadLettered = new();
        private readonly ConcurrentDictionary<int, byte> _handlerGaveUp = new();
        private readonly ConcurrentDictionary<int, int> _attempts = new();
        private readonly ConcurrentQueue<string> _violations = new();
        private CancellationTokenSource? _cancellation;
        private int _flushes;

        public AccountingRun(int seed, BrokenFlusher broken)
        {
            _seed = seed;
            _broken = broken;
            _rng = new Random(seed);
            _count = _rng.Next(1, 40);
            _fanOut = Enumerable.Range(0, _count).Select(_ => _rng.Next(0, 5)).ToArray();
            _failingAttempts = Enumerable.Range(0, _count).Select(_ => _rng.NextDouble() < 0.1 ? _rng.Next(1, 4) : 0).ToArray();
            (_policyName, _policy) = _rng.Next(6) switch
            {
                0 => ("fatal", ErrorPolicy.Fatal),
                1 => ("retry", ErrorPolicy.Retry(2, TimeSpan.Zero, TimeSpan.Zero).Then(ErrorPolicy.NegativeAck(TimeSpan.FromSeconds(1)))),
                2 => ("nack", ErrorPolicy.NegativeAck(TimeSpan.FromMilliseconds(5))),
                3 => ("skip", ErrorPolicy.Skip),
                4 => ("terminate", ErrorPolicy.Terminate),
                _ => ("deadletter", ErrorPolicy.DeadLetter(new DestinationFunc<DeadLetter<int>>(HandlerDeadLetterAsync))),
            };
            _deadLetterBehaviour = _rng.Next(3);
            (_onErrorName, _onError) = _rng.Next(4) switch
            {
                0 => ("raise", BatchErrorHandler<(int Id, int Part)>.Raise),
                1 => ("discard", BatchErrorHandler<(int Id, int Part)>.DiscardAndAck),
                2 => ("nack", BatchErrorHandler<(int Id, int Part)>.NegativeAck(TimeSpan.FromSeconds(2))),
                _ => ("deadletter", BatchErrorHandler<(int Id, int Part)>.DeadLetter(new DestinationFunc<DeadLetter<(int Id, int Part)>>(BatchDeadLetterAsync))),
            };
            _flushFaultRate = _rng.Next(3) switch
            {
                0 => 0,
                1 => 0.15,
                _ => 0.5,
            };
            _deferRate = _rng.Next(3) == 0 ? 0.5 : 0;
            _cancelAfter = _rng.NextDouble() < 0.25 ? _rng.Next(0, _count + 1) : -1;
            _cancelAtFlush = _cancelAfter < 0 && _rng.NextDouble() < 0.15 ? _rng.Next(1, 4) : -1;

            // Some cancelled runs hold their flushes until the drain times out, so the sink's drain-timeout path (every
            // unsettled token negatively acked) runs in every batch of seeds, not only on a slow machine.
            _stallFlushAfterCancel = (_cancelAfter >= 0 || _cancelAtFlush >= 0) && _rng.Next(3) == 0;
        }

        // Written from flush threads too.
        private readonly ConcurrentDictionary<string, byte> _facts = new();

        public ICollection<string> Facts => _facts.Keys;

        /// <summary>Called by a source token at the moment it is acked: everything the ack vouches for must be durable now.</summary>
        public void CheckAckJustified(int id)
        {
            if (_handlerDeadLettered.ContainsKey(id) || (_policyName == "skip" && _handlerGaveUp.ContainsKey(id)))
            {
                return;
            }

            for (var part = 0; part < _fanOut[id]; part++)
            {
                var key = (id, part);
                var justified = _durable.ContainsKey(key)
                    || _batchDeadLettered.ContainsKey(key)
                    || (_onErrorName == "discard" && _flushFailed.ContainsKey(key));
                if (!justified)
                {
                    _violations.Enqueue($"message {id} {NotDurable}: output {part} of {_fanOut[id]} is not written (policy {_policyName}, on error {_onErrorName})");
                    return;
                }
            }
        }

        public async Task<List<string>> RunAndCheckAsync()
        {
            using var cts = new CancellationTokenSource();
            _cancellation = cts;
            // A run cancelled after its n-th read waits for that cancellation at the end of its messages; one cancelled at
            // its n-th flush is finite, since that flush may never come.
            var source = new Source(this, _count, endless: _cancelAfter >= 0, onReceived: n =>
            {
                if (_cancelAfter >= 0 && n >= _cancelAfter)
                {
                    cts.Cancel();
                }
            });
            if (_cancelAfter == 0)
            {
                cts.Cancel();
            }

            var batching = new BatchingOptions<(int Id, int Part)>
            {
                MaxBatchSize = _rng.Next(1, 9),
                MaxBatchAge = _rng.Next(2) == 0 ? TimeSpan.FromMilliseconds(_rng.Next(1, 4)) : Timeout.InfiniteTimeSpan,
                FlushParallelism = _rng.Next(1, 4),
                BufferedBatches = _rng.Next(1, 3),
                MaxRetries = _rng.Next(0, 3),
                RetryBaseDelay = TimeSpan.Zero,
                RetryMaxDelay = TimeSpan.Zero,
                OnError = _onError,
                StageName = "sink",
            };
            var sink = new BatchingDestination<(int Id, int Part)>(new Flusher(this), batching);
            var builder = Kawa.Dataflow.Pipeline.Create($"batching-accounting-{_seed}")
                .From(source)
                .Handle<(int Id, int Part)>(
                    "fan",
                    HandleAsync,
                    new StageOptions
                    {
                        MaxDegreeOfParallelism = _rng.Next(1, 4),
                        KeyOrdered = _rng.Next(2) == 0,
                        EnsureOrdered = _rng.Next(2) == 0,
                        BoundedCapacity = _rng.Next(1, 4),
                        ErrorPolicy = _policy,
                    });
            var destinationOptions = new DestinationOptions { MaxDegreeOfParallelism = _rng.Next(1, 3), BoundedCapacity = _rng.Next(1, 3) };
            var pipelineOptions = new PipelineOptions
            {
                MaxInFlightMessages = _rng.Next(1, 30),
                SegmentSize = _rng.Next(1, 8),
                DrainTimeout = _stallFlushAfterCancel ? TimeSpan.FromMilliseconds(_rng.Next(1, 20)) : TimeSpan.FromSeconds(20),
            };
            var pipeline = builder.To(sink, destinationOptions).Build(pipelineOptions);

            // Unordered stages at a parallelism of two or more run to completion (the batching sink takes concurrent sends).
            _facts[pipeline.RunsToCompletion ? "ran-to-completion" : "staged"] = 0;
            var setup = $"{_count} messages, cancel after {_cancelAfter} / at flush {_cancelAtFlush}, stall {_stallFlushAfterCancel}, "
                + $"in flight {pipelineOptions.MaxInFlightMessages}, segment {pipelineOptions.SegmentSize}, drain {pipelineOptions.DrainTimeout.TotalMilliseconds} ms, "
                + $"batch {batching.MaxBatchSize} age {batching.MaxBatchAge.TotalMilliseconds} ms x{batching.FlushParallelism} buffered {batching.BufferedBatches} retries {batching.MaxRetries}, "
                + $"fault rate {_flushFaultRate}, defer {_deferRate}, policy {_policyName}, on error {_onErrorName}";

            var violations = new List<string>();
            Exception? error = null;
            var run = Task.Run(() => pipeline.RunAsync(cts.Token));
            try
            {
                await run.WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
                violations.Add($"run did not finish after reading {source.Received} ({setup}); flushes {Volatile.Read(ref _flushes)}, settled {source.Tokens.Count(t => t.Completions > 0)}");
                return violations;
            }
            catch (Exception ex)
            {
                error = ex;
            }
            finally
            {
                await sink.DisposeAsync();
            }

            var cancelled = cts.IsCancellationRequested;
            RecordFacts(source, error, cancelled);
            switch (error)
            {
                case null:
                case OperationCanceledException when cancelled:
                    break;
                case PipelineStageException stage when Caused(stage):
                    break;
                default:
                    violations.Add($"unexpected error {error.GetType().Name}: {error.Message}");
                    break;
            }

            violations.AddRange(_violations);
            foreach (var token in source.Tokens)
            {
                if (token.Completions != 1)
                {
                    violations.Add($"message {token.Id} has {token.Completions} final outcomes ({setup})");
                }
            }

            if (error is null && !cancelled && source.Received != _count)
            {
                violations.Add($"completed normally after reading {source.Received} of {_count} messages");
            }

            return violations;
        }

        // A fatal error must be one the run injected: a handler fault, a raised flush failure, a dead-letter failure.
        private static bool Caused(Exception error)
        {
            for (var e = error; e is not null; e = e.InnerException)
            {
                if (e is InjectedFault)
                {
                    return true;
                }
            }

            return false;
        }

        private void RecordFacts(Source source, Exception? error, bool cancelled)
        {
            Fact(error switch
            {
                null when cancelled => "cancelled-drained",
                null => "completed",
                OperationCanceledException => "drain-timed-out",
                _ => "fatal",
            });
            foreach (var token in source.Tokens)
            {
                if (token.Outcome is { } outcome)
                {
                    Fact(outcome.Kind.ToString());
                }
            }

            if (_durable.Keys.Any(k => k.Part > 0))
            {
                Fact("fan-out");
            }

            if (!_batchDeadLettered.IsEmpty)
            {
                Fact("dead-lettered");
            }

            if (!_flushFailed.IsEmpty)
            {
                Fact("flush-failed");
                if (_onErrorName == "discard" && source.Tokens.Any(t => t.Outcome?.Kind == AckKind.Ack))
                {
                    Fact("discarded");
                }
            }
        }

        private void Fact(string fact) => _facts.TryAdd(fact, 0);

        private double Roll()
        {
            lock (_rngLock)
            {
                return _rng.NextDouble();
            }
        }

        private async ValueTask<Messages<(int Id, int Part)>> HandleAsync(Message<int> message, CancellationToken cancellationToken)
        {
            var id = message.Value;
            var attempt = _attempts.AddOrUpdate(id, 1, (_, a) => a + 1);
            return await RandomFanOut.HandleAsync(message, attempt, _failingAttempts[id], _fanOut[id], _handlerGaveUp, text => new InjectedFault(text), cancellationToken);
        }

        private ValueTask HandlerDeadLetterAsync(AckToken ack, Messages<DeadLetter<int>> records, CancellationToken cancellationToken)
            => RandomDeadLetters.WriteAsync(_deadLetterBehaviour, _handlerDeadLettered, ack, records, () => new InjectedFault("handler dead-letter write failed"));

        private ValueTask BatchDeadLetterAsync(AckToken ack, Messages<DeadLetter<(int Id, int Part)>> records, CancellationToken cancellationToken)
            => RandomDeadLetters.WriteAsync(_deadLetterBehaviour, _batchDeadLettered, ack, records, () => new InjectedFault("batch dead-letter write failed"));

        /// <summary>Writes batches, failing at random; some acks are deferred to a commit (the Parquet shape).</summary>
        private sealed class Flusher(AccountingRun run) : IBatchFlusher<(int Id, int Part)>
        {
            private readonly Lock _lock = new();
            private readonly List<(DeferredAcks Acks, (int Id, int Part)[] Rows)> _uncommitted = [];

            public async ValueTask FlushAsync(Batch<(int Id, int Part)> batch, CancellationToken cancellationToken)
            {
                var call = Interlocked.Increment(ref run._flushes);
                if (run._cancelAtFlush == call)
                {
                    await run._cancellation!.CancelAsync();
                }

                if (batch.Attempt > 1)
                {
                    run.Fact("flush-retried");
                }

                await Task.Yield();
                if (run._stallFlushAfterCancel && run._cancellation!.IsCancellationRequested)
                {
                    // Holds on until the drain times out and the sink cancels it.
                    await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
                }

                var rows = batch.Messages.Select(m => m.Value).ToArray();
                switch (run._broken)
                {
                    case BrokenFlusher.AcksBeforeFlushCompletes:
                        batch.DeferAcks().Ack();
                        await Task.Yield();
                        Fail(rows);
                        Write(rows);
                        return;
                    case BrokenFlusher.DropsBatch when call % 2 == 1:
                        return;
                }

                Fail(rows);
                if (run.Roll() < run._deferRate)
                {
                    // Appended to an open file: durable (and acked) only when the file commits.
                    lock (_lock)
                    {
                        _uncommitted.Add((batch.DeferAcks(), rows));
                    }

                    run.Fact("deferred");
                    return;
                }

                Write(rows);
            }

            public ValueTask CompleteAsync(CancellationToken cancellationToken) => CommitAsync(cancellationToken);

            public ValueTask CommitHeldAsync(CancellationToken cancellationToken) => CommitAsync(cancellationToken);

            private ValueTask CommitAsync(CancellationToken cancellationToken)
            {
                (DeferredAcks Acks, (int Id, int Part)[] Rows)[] files;
                lock (_lock)
                {
                    files = [.. _uncommitted];
                    _uncommitted.Clear();
                }

                foreach (var (acks, rows) in files)
                {
                    if (cancellationToken.IsCancellationRequested || run.Roll() < run._flushFaultRate / 2)
                    {
                        acks.Nack(); // the commit failed: nothing of it is durable
                        continue;
                    }

                    Write(rows);
                    acks.Ack();
                }

                return default;
            }

            private void Fail((int Id, int Part)[] rows)
            {
                if (run.Roll() >= run._flushFaultRate)
                {
                    return;
                }

                // Recorded before throwing: if the sink then discards the batch, this is why it may be acked unwritten.
                foreach (var row in rows)
                {
                    run._flushFailed[row] = 0;
                }

                throw new InjectedFault($"flush of {rows.Length} row(s) failed");
            }

            private void Write((int Id, int Part)[] rows)
            {
                foreach (var row in rows)
                {
                    run._durable[row] = 0;
                }
            }
        }
    }
}
