using System.Collections.Concurrent;
using Kawa.Dataflow.Testing;

namespace Kawa.Dataflow.Tests.Contracts;

/// <summary>The contract checks catch broken components (so a passing contract test means something).</summary>
public class ContractSelfTests
{
    [Test]
    public void DestinationContract_AcksBeforeWriting_IsViolation()
    {
        var contract = new FuncDestinationContract(written => new DestinationFunc<int>((ack, messages, _) =>
        {
            ack.Ack(); // too early
            foreach (var m in messages)
            {
                written.TryAdd(m.Value, 0);
            }

            return default;
        }));

        Assert.That(async () => await contract.AcksIfAndOnlyIfDurableAsync(), Throws.TypeOf<ContractViolationException>().With.Message.Contains("Acked before durable"));
    }

    [Test]
    public void DestinationContract_AcksDespiteFailure_IsViolation()
    {
        var broken = false;
        var contract = new FuncDestinationContract(written => new DestinationFunc<int>((ack, messages, _) =>
        {
            if (!broken)
            {
                foreach (var m in messages)
                {
                    written.TryAdd(m.Value, 0);
                }
            }

            ack.Ack(); // acks even when nothing was written
            return default;
        }), () => broken = true);

        Assert.That(async () => await contract.FailingWriteDoesNotAckAsync(), Throws.TypeOf<ContractViolationException>());
    }

    [Test]
    public void DestinationContract_ThrowsAndSettles_IsViolation()
    {
        var contract = new FuncDestinationContract(_ => new DestinationFunc<int>((ack, _, _) =>
        {
            ack.Nack();
            throw new IOException("and throws too");
        }));

        Assert.That(async () => await contract.FailingWriteDoesNotAckAsync(), Throws.TypeOf<ContractViolationException>().With.Message.Contains("threw"));
    }

    [Test]
    public void DestinationContract_HoldsTokensPastFlush_IsViolation()
    {
        var contract = new FuncDestinationContract(written => new DestinationFunc<int>((_, messages, _) =>
        {
            foreach (var m in messages)
            {
                written.TryAdd(m.Value, 0);
            }

            return default; // never acks
        }));

        Assert.That(async () => await contract.FlushSettlesEverythingHeldAsync(), Throws.TypeOf<ContractViolationException>().With.Message.Contains("no outcome"));
    }

    [Test]
    public void SourceContract_ReusedToken_IsViolation()
    {
        var shared = AckToken.None();
        var contract = new FuncSourceContract(() => new SourceFunc<int>(_ => new(new Delivery<int>(new Message<int>(1), shared))));

        Assert.That(async () => await contract.EachDeliveryHasAFreshTokenAsync(), Throws.TypeOf<ContractViolationException>().With.Message.Contains("reused"));
    }

    [Test]
    public void SourceContract_IgnoresCancellation_IsViolation()
    {
        var contract = new FuncSourceContract(() => new SourceFunc<int>(async _ =>
        {
            await Task.Delay(Timeout.Infinite, CancellationToken.None);
            return default;
        }))
        { MaxWait = TimeSpan.FromMilliseconds(200) };

        Assert.That(async () => await contract.PendingReceiveHonoursCancellationAsync(), Throws.TypeOf<ContractViolationException>());
    }

    [Test]
    public void SourceContract_MessageAfterEnd_IsViolation()
    {
        var contract = new FuncSourceContract(() =>
        {
            var calls = 0;
            return new SourceFunc<int>(_ => new(++calls == 3 ? Delivery<int>.EndOfStream : new Delivery<int>(new Message<int>(calls), AckToken.None())));
        });

        Assert.That(async () => await contract.EndOfStreamIsStableAsync(), Throws.TypeOf<ContractViolationException>().With.Message.Contains("after the last message"));
    }

    [Test]
    public void SourceContract_CheckDeclaredInapplicable_ThrowsInsteadOfPassing()
    {
        var contract = new FuncSourceContract(() => new SourceFunc<int>(_ => new(Delivery<int>.EndOfStream))) { OutcomesReachSource = false, CanStayOpen = false };

        Assert.That(async () => await contract.OutcomeReachesSourceAsync(), Throws.InvalidOperationException.With.Message.Contains(nameof(SourceContract<int>.OutcomeChangesNothingAsync)));
        Assert.That(async () => await contract.PendingReceiveHonoursCancellationAsync(), Throws.InvalidOperationException.With.Message.Contains(nameof(SourceContract<int>.EmptySourceEndsAtOnceAsync)));
    }

    [Test]
    public void SourceContract_AtMostOnceSourceThatRedeliversANack_IsViolation()
    {
        var contract = new FuncSourceContract(() =>
        {
            var calls = 0;
            return new SourceFunc<int>(_ => new(++calls <= 4 ? new Delivery<int>(new Message<int>(calls), AckToken.None()) : Delivery<int>.EndOfStream));
        })
        { OutcomesReachSource = false };

        Assert.That(async () => await contract.OutcomeChangesNothingAsync(), Throws.TypeOf<ContractViolationException>().With.Message.Contains("again"));
    }

    [Test]
    public void SourceContract_NeverEndingSourceThatEnds_IsViolation()
    {
        var contract = new FuncSourceContract(() =>
        {
            var calls = 0;
            return new SourceFunc<int>(_ => new(++calls <= 2 ? new Delivery<int>(new Message<int>(calls), AckToken.None()) : Delivery<int>.EndOfStream));
        })
        { CanEnd = false };

        Assert.That(async () => await contract.KeepsWaitingAfterLastMessageAsync(), Throws.TypeOf<ContractViolationException>().With.Message.Contains("never to end"));
    }

    [Test]
    public void SourceContract_FiniteSourceThatWaitsWhenEmpty_IsViolation()
    {
        var contract = new FuncSourceContract(() => new SourceFunc<int>(async ct =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            return default;
        }))
        { CanStayOpen = false, MaxWait = TimeSpan.FromMilliseconds(200) };

        Assert.That(async () => await contract.EmptySourceEndsAtOnceAsync(), Throws.TypeOf<ContractViolationException>());
    }

    [Test]
    public void SourceContract_NackedMessageNeverComesBack_IsViolation()
    {
        var contract = new FuncSourceContract(() =>
        {
            var calls = 0;
            return new SourceFunc<int>(_ => new(++calls == 1 ? new Delivery<int>(new Message<int>(1), AckToken.None()) : Delivery<int>.EndOfStream));
        });

        Assert.That(async () => await contract.NegativeAckIsRedeliveredAsync(), Throws.TypeOf<ContractViolationException>().With.Message.Contains("without delivering"));
    }

    [Test]
    public void SourceContract_DeclaredNotToRedeliverButDoes_IsViolation()
    {
        var contract = new FuncSourceContract(() =>
        {
            var calls = 0;
            return new SourceFunc<int>(_ => new(++calls <= 2 ? new Delivery<int>(new Message<int>(1), AckToken.None()) : Delivery<int>.EndOfStream));
        })
        { RedeliversNegativeAcks = false };

        Assert.That(async () => await contract.NegativeAckIsNotRedeliveredAsync(), Throws.TypeOf<ContractViolationException>().With.Message.Contains("again"));
    }

    private sealed class FuncDestinationContract(Func<ConcurrentDictionary<int, byte>, IDestination<int>> create, Action? breakWrites = null) : DestinationContract<int>
    {
        protected override ValueTask<DestinationUnderTest<int>> CreateAsync()
        {
            var written = new ConcurrentDictionary<int, byte>();
            return new(new DestinationUnderTest<int> { Destination = create(written), IsDurable = m => written.ContainsKey(m.Value), BreakWrites = breakWrites ?? (() => { }) });
        }

        protected override Message<int> CreateMessage(int index) => new(index);
    }

    private sealed class FuncSourceContract(Func<ISource<int>> create) : SourceContract<int>
    {
        protected override ValueTask<SourceUnderTest<int>> CreateAsync(int messageCount, bool endAfterMessages)
            => new(new SourceUnderTest<int> { Source = create(), OutcomeSeen = _ => null });
    }
}
