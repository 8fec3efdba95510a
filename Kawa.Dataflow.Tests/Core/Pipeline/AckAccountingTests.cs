using System.Collections.Concurrent;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

/// <summary>
/// Randomized, seeded runs checking the one promise everything rests on: every message read gets exactly one final
/// outcome, and an ack always means the message's outputs (or its dead-letter record) were durably written.
/// </summary>
public class AckAccountingTests
{
    private static readonly int FirstSeed = int.TryParse(Environment.GetEnvironmentVariable("ACK_ACCOUNTING_FIRST_SEED"), out var first) ? first : 1;

    private static readonly int Runs = int.TryParse(Environment.GetEnvironmentVariable("ACK_ACCOUNTING_RUNS"), out var runs) ? runs : 1000;

    [Test]
    public async Task RunAsync_RandomFanOutFailuresPoliciesAndCancellation_EveryMessageSettledOnceAndAckMeansDurable()
    {
        var (failures, seen) = await SeededRuns.RunAsync(FirstSeed, Runs, async seed =>
        {
            var run = new AccountingRun(seed, BrokenDestination.None);
            return (await run.RunAndCheckAsync(), run.Facts);
        });

        Assert.That(failures, Is.Empty);

        // The runs really went through every path the check is about.
        Assert.That(seen, Is.SupersetOf(new[]
        {
            "completed", "cancelled-drained", "drain-timed-out", "fatal", "Ack", "Nack", "Terminate", "dead-lettered", "fan-out",
        }));
    }

    [Test]
    public async Task RunAsync_RunToCompletionWithRandomFanOutFailuresPoliciesAndCancellation_EveryMessageSettledOnceAndAckMeansDurable()
    {
        // The same runs with every stage unordered at one parallelism, so the workers carry segments from source to
        // destination themselves (PipelineOptions.RunToCompletion).
        var (failures, seen) = await SeededRuns.RunAsync(FirstSeed, Runs / 2, async seed =>
        {
            var run = new AccountingRun(seed, BrokenDestination.None, runToCompletion: true);
            return (await run.RunAndCheckAsync(), run.Facts);
        });

        Assert.That(failures, Is.Empty);
        Assert.That(seen, Is.SupersetOf(new[]
        {
            "ran-to-completion", "completed", "cancelled-drained", "drain-timed-out", "fatal", "Ack", "Nack", "Terminate", "dead-lettered", "fan-out",
        }));
        Assert.That(seen, Does.Not.Contain("staged"));
    }

    [TestCase(BrokenDestination.AcksBeforeWriteCompletes)]
    [TestCase(BrokenDestination.DropsMessage)]
    [TestCase(BrokenDestination.AcksTwice)]
    public async Task Checker_BrokenDestination_ReportsViolation(BrokenDestination broken)
    {
        var caught = 0;
        for (var seed = 1; seed <= 50; seed++)
        {
            var violations = await new AccountingRun(seed, broken).RunAndCheckAsync();
            if (violations.Count > 0)
            {
                caught++;
            }
        }

        // The broken behaviour shows in most runs (only runs where nothing reached the destination can hide it).
        Assert.That(caught, Is.GreaterThan(25));
    }

    public enum BrokenDestination
    {
        None,
        AcksBeforeWriteCompletes,
        DropsMessage,
        AcksTwice,
    }

    private sealed class InjectedFault(string message) : Exception(message);

    private sealed class AccountingRun
    {
        private readonly Random _rng;
        private readonly BrokenDestination _broken;
        private readonly int _count;
        private readonly int[] _fanOut;
        private readonly int[] _failingAttempts;
        private readonly ErrorPolicy _policy;
        private readonly string _policyName;
        private readonly int _cancelAfter;
        private readonly double _destinationFaultRate;
        private readonly int _dlqBehaviour;
        private readonly ConcurrentDictionary<(int Id, int Part), byte> _durable = new();
        private readonly ConcurrentDictionary<int, byte> _deadLettered = new();
        private readonly ConcurrentQueue<AckToken> _held = new();
        private readonly ConcurrentDictionary<int, byte> _handlerGaveUp = new();
        private readonly ConcurrentDictionary<int, int> _attempts = new();
        private readonly int _seed;
        private readonly bool _stallAfterCancel;
        private CancellationTokenSource? _runCancellation;

        private readonly bool _runToCompletion;

        public AccountingRun(int seed, BrokenDestination broken, bool runToCompletion = false)
        {
            _runToCompletion = runToCompletion;
            _seed = seed;
            _rng = new Random(seed);
            _broken = broken;
            _count = _rng.Next(1, 40);
            _fanOut = Enumerable.Range(0, _count).Select(_ => _rng.Next(0, 5)).ToArray();
            _failingAttempts = Enumerable.Range(0, _count).Select(_ => _rng.NextDouble() < 0.15 ? _rng.Next(1, 4) : 0).ToArray();
            _dlqBehaviour = _rng.Next(3);
            (_policyName, _policy) = _rng.Next(6) switch
            {
                0 => ("fatal", ErrorPolicy.Fatal),
                1 => ("retry", ErrorPolicy.Retry(2, TimeSpan.Zero, TimeSpan.Zero).Then(ErrorPolicy.NegativeAck(TimeSpan.FromSeconds(1)))),
                2 => ("nack", ErrorPolicy.NegativeAck(TimeSpan.FromMilliseconds(5))),
                3 => ("skip", ErrorPolicy.Skip),
                4 => ("terminate", ErrorPolicy.Terminate),
                _ => ("deadletter", ErrorPolicy.Retry(1, TimeSpan.Zero, TimeSpan.Zero).Then(ErrorPolicy.DeadLetter(new DestinationFunc<DeadLetter<int>>(DeadLetterAsync)))),
            };
            _cancelAfter = _rng.NextDouble() < 0.3 ? _rng.Next(0, _count + 1) : -1;
            _destinationFaultRate = _rng.NextDouble() < 0.1 ? 0.05 : 0;

            // Some cancelled runs hold a handler until the pipeline aborts it, so a drain timeout really happens in
            // every batch of seeds instead of only when the machine happens to be slow.
            _stallAfterCancel = _cancelAfter >= 0 && _rng.Next(4) == 0;
        }

        public HashSet<string> Facts { get; } = [];

        public async Task<List<string>> RunAndCheckAsync()
        {
            var violations = new List<string>();
            using var cts = new CancellationTokenSource();
            var source = new TestSource<int>(TestMessages.Ints(_count, i => i % 3 == 0 ? null : "k" + (i % 5)), endless: _cancelAfter >= 0);
            source.OnReceived = n =>
            {
                if (n >= _cancelAfter && _cancelAfter >= 0)
                {
                    cts.Cancel();
                }
            };
            if (_cancelAfter == 0)
            {
                cts.Cancel();
            }

            _runCancellation = cts;

            var stageOptions = new StageOptions
            {
                MaxDegreeOfParallelism = _rng.Next(1, 4),
                KeyOrdered = _rng.Next(2) == 0,
                EnsureOrdered = _rng.Next(2) == 0,
                BoundedCapacity = _rng.Next(1, 4),
                ErrorPolicy = _policy,
            };
            if (_runToCompletion)
            {
                stageOptions.MaxDegreeOfParallelism = 2 + (stageOptions.MaxDegreeOfParallelism % 2);
                stageOptions.KeyOrdered = false;
                stageOptions.EnsureOrdered = false;
            }

            var builder = Kawa.Dataflow.Pipeline.Create($"accounting-{_seed}")
                .From(source)
                .Handle<(int Id, int Part)>("fan", HandleAsync, stageOptions);
            if (_rng.Next(2) == 0)
            {
                var pipeParallelism = _rng.Next(1, 3);
                builder = builder.Handle("pipe", Handler.Pipe<(int Id, int Part)>(), _runToCompletion
                    ? new StageOptions { MaxDegreeOfParallelism = stageOptions.MaxDegreeOfParallelism, EnsureOrdered = false }
                    : new StageOptions { MaxDegreeOfParallelism = pipeParallelism });
            }

            var destinationParallelism = _rng.Next(1, 4);
            var pipeline = builder
                .To(new Destination(this), new DestinationOptions { MaxDegreeOfParallelism = _runToCompletion ? stageOptions.MaxDegreeOfParallelism : destinationParallelism, BoundedCapacity = _rng.Next(1, 3) })
                .Build(new PipelineOptions
                {
                    MaxInFlightMessages = _rng.Next(1, 20),
                    SegmentSize = _rng.Next(1, 8),
                    DrainTimeout = _stallAfterCancel || _rng.Next(2) == 0 ? TimeSpan.FromMilliseconds(_rng.Next(1, 20)) : TimeSpan.FromSeconds(20),
                });

            Facts.Add(pipeline.RunsToCompletion ? "ran-to-completion" : "staged");
            Exception? error = null;
            var run = Task.Run(() => pipeline.RunAsync(cts.Token));
            try
            {
                await run.WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (TimeoutException)
            {
                violations.Add($"run did not finish (policy {_policyName})");
                return violations;
            }
            catch (Exception ex)
            {
                error = ex;
            }

            var cancelled = cts.IsCancellationRequested;
            Facts.Add(error switch
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
                    Facts.Add(outcome.Kind.ToString());
                }
            }

            if (!_deadLettered.IsEmpty)
            {
                Facts.Add("dead-lettered");
            }

            if (_durable.Keys.Any(k => k.Part > 0))
            {
                Facts.Add("fan-out");
            }
            switch (error)
            {
                case null:
                    break;
                case OperationCanceledException when cancelled:
                    break;
                case PipelineStageException { InnerException: InjectedFault }:
                    break;
                default:
                    violations.Add($"unexpected error {error.GetType().Name}: {error.Message}");
                    break;
            }

            foreach (var token in source.Tokens)
            {
                if (token.Completions != 1)
                {
                    violations.Add($"message {token.Id} has {token.Completions} final outcomes (policy {_policyName})");
                    continue;
                }

                if (token.Outcome!.Value.Kind != AckKind.Ack)
                {
                    continue;
                }

                var id = token.Id;
                var durable = Enumerable.Range(0, _fanOut[id]).All(part => _durable.ContainsKey((id, part)));
                var justified = durable
                    || (_policyName == "skip" && _handlerGaveUp.ContainsKey(id))
                    || _deadLettered.ContainsKey(id);
                if (!justified)
                {
                    violations.Add($"message {id} acked but its {_fanOut[id]} output(s) are not all durable (policy {_policyName})");
                }
            }

            if (error is null && !cancelled && source.Received != _count)
            {
                violations.Add($"completed normally after reading {source.Received} of {_count} messages");
            }

            return violations;
        }

        private async ValueTask<Messages<(int Id, int Part)>> HandleAsync(Message<int> message, CancellationToken cancellationToken)
        {
            var id = message.Value;
            var attempt = _attempts.AddOrUpdate(id, 1, (_, a) => a + 1);
            if (_stallAfterCancel)
            {
                // The caller cancels while this call is in flight, and the call holds on until the drain times out
                // and the pipeline aborts it.
                await _runCancellation!.CancelAsync();
                await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
            }

            return await RandomFanOut.HandleAsync(message, attempt, _failingAttempts[id], _fanOut[id], _handlerGaveUp, text => new InjectedFault(text), cancellationToken);
        }

        private ValueTask DeadLetterAsync(AckToken ack, Messages<DeadLetter<int>> records, CancellationToken cancellationToken)
            => RandomDeadLetters.WriteAsync(_dlqBehaviour, _deadLettered, ack, records, () => new InjectedFault("dead-letter write failed"));

        private sealed class Destination(AccountingRun run) : IDestination<(int Id, int Part)>
        {
            private readonly ConcurrentQueue<Task> _background = new();
            private int _calls;

            public async ValueTask SendAsync(AckToken ack, Messages<(int Id, int Part)> messages, CancellationToken cancellationToken = default)
            {
                var call = Interlocked.Increment(ref _calls);
                double roll;
                lock (run._rng)
                {
                    roll = run._rng.NextDouble();
                }

                switch (run._broken)
                {
                    case BrokenDestination.AcksBeforeWriteCompletes:
                        ack.Ack();
                        await Task.Yield();
                        if (call % 2 == 0)
                        {
                            return; // the write "failed" after the ack: lost
                        }

                        Write(messages);
                        return;
                    case BrokenDestination.DropsMessage:
                        if (call % 3 == 1)
                        {
                            ack.Ack();
                            return;
                        }

                        break;
                    case BrokenDestination.AcksTwice:
                        Write(messages);
                        ack.Ack();
                        ack.Ack();
                        return;
                }

                if (roll < 0.5)
                {
                    await Task.Yield();
                }

                if (roll < run._destinationFaultRate)
                {
                    throw new InjectedFault("destination write failed");
                }

                cancellationToken.ThrowIfCancellationRequested();
                if (roll > 0.9)
                {
                    ack.Nack(TimeSpan.FromSeconds(1));
                    return;
                }

                Write(messages);
                if (roll > 0.8)
                {
                    // Deferred: settled at flush, unless acked first from another thread.
                    run._held.Enqueue(ack);
                    _background.Enqueue(Task.Run(() => ack.TryComplete(AckOutcome.Acked), CancellationToken.None));
                    return;
                }

                if (roll > 0.7)
                {
                    // Deferred: acked later from another thread.
                    _background.Enqueue(Task.Run(async () =>
                    {
                        await Task.Yield();
                        ack.Ack();
                    }, CancellationToken.None));
                    return;
                }

                ack.Ack();
            }

            public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
            {
                // The contract: when the flush returns, every token this destination took is settled,
                // including those it acks from other threads.
                await Task.WhenAll(_background);
                while (run._held.TryDequeue(out var ack))
                {
                    ack.TryComplete(cancellationToken.IsCancellationRequested ? AckOutcome.Negative() : AckOutcome.Acked);
                }
            }

            private void Write(Messages<(int Id, int Part)> messages)
            {
                foreach (var message in messages)
                {
                    run._durable[message.Value] = 0;
                }
            }
        }
    }
}
