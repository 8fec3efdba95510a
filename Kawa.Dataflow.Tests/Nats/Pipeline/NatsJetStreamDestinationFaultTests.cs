using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

[NonParallelizable]
public class NatsJetStreamDestinationFaultTests
{
    [Test]
    public async Task FlushAsync_ServerHungSoNoPubAck_BatchFailsAndTheTokenIsNacked()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using var connection = await NatsTestHelpers.ConnectAsync(server);
        await new JetStreamContext(connection).CreateStreamAsync(new StreamConfig { Name = "HUNG", Subjects = ["hung.>"] });
        await using var destination = NatsJetStreamDestination<byte[]>.Create(connection, new NatsJetStreamDestinationOptions<byte[]>
        {
            Subject = "hung.x",
            PubAckTimeout = TimeSpan.FromMilliseconds(500),
            Batching = new BatchingOptions<byte[]> { MaxRetries = 0 },
        });
        var outcome = new TaskCompletionSource<AckOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);

        await server.PauseAsync(); // SIGSTOP: the socket stays open, no PubAck ever comes
        try
        {
            await destination.SendAsync(AckToken.Create(o => outcome.TrySetResult(o)), new Message<byte[]>("x"u8.ToArray()));
            try
            {
                await destination.FlushAsync().AsTask().WaitAsync(NatsTestHelpers.Generous);
            }
            catch (Exception ex) when (ex is not TimeoutException)
            {
                // The batch's failure may surface from the drain too; what matters is the token below.
            }

            Assert.That((await outcome.Task.WaitAsync(NatsTestHelpers.Generous)).Kind, Is.EqualTo(AckKind.Nack), "no PubAck: never acked, redelivered by the source");
        }
        finally
        {
            await server.ResumeAsync();
        }
    }
}
