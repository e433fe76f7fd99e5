from znet.server import NewServer
from znet.router import BaseRouter
from ziface.irequest import IRequest

class PingRouter(BaseRouter):
    def Handle(self, request: IRequest):
        print(request.GetData())
        request.GetConnection().SendMsg(1, "ping\n".encode("GB2312"))
        request.GetConnection().SendMsg(1, request.GetData())

def ConnectionStart(con): print("======Start========", con.GetConnID())
def ConnectionStop(con):  print("======Stop========", con.GetConnID())

if __name__ == '__main__':
    server = NewServer()
    server.AddRouter(1, PingRouter())
    server.SetOnConnStart(ConnectionStart)
    server.SetOnConnStop(ConnectionStop)
    server.Serve()
